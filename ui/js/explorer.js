// The explorer: search box, time range, histogram, facets, the result list and live tail.
// The list is fetched first; the histogram and facets run in parallel beside it.

import { h, mount, emptyState, fmtCount, LEVELS, levelClass } from './dom.js';
import { getJSON, query, rowsOf } from './api.js';
import { setState, emit, readState } from './state.js';
import { rangeOf, rangeLabel, RELATIVE, toInput, parseInput, zoneLabel } from './time.js';
import { splitPipes, addFilter, byteToIndex, caseless, searchTerms } from './query.js';
import { drawHistogram } from './histogram.js';
import { LogList, contextDialog } from './list.js';
import { table, barList } from './charts.js';
import { listSaved, saveQuery, deleteSaved } from './saved.js';

const PAGE = 100;
const TAIL_QUEUE = 1000; // entries kept while the tail is paused
/** The auto-refresh intervals offered: their name in the URL, and milliseconds. */
const EVERY = [['5s', 5e3], ['10s', 10e3], ['30s', 30e3], ['1m', 60e3], ['5m', 300e3]];
const LIVE_COUNTS_EVERY = 5e3; // how often the histogram and facets follow a live tail
const FEW = 10; // a list this short asks whether ignoring case would find more
const HISTORY = 30; // queries remembered for the search box's suggestions

/** A list kept in the browser's storage (queries run, extra facets, columns). */
function stored(key) {
  try { const v = JSON.parse(localStorage.getItem(key) || '[]'); return Array.isArray(v) ? v : []; } catch { return []; }
}
function store(key, list) {
  try { localStorage.setItem(key, JSON.stringify(list)); } catch { /* not kept */ }
}

/** Shows the chosen columns in the list, each with a × that removes it. */
function setColumns() {
  if (!ui) return;
  const cols = stored('logyard.columns');
  ui.list.columns = cols;
  mount(ui.colTags, cols.map((c) => h('span.tag.coltag', null, c,
    h('button.fx.uncol', { type: 'button', title: `remove the ${c} column`, 'aria-label': `remove column ${c}`,
      onclick: () => { store('logyard.columns', cols.filter((x) => x !== c)); setColumns(); } }, '×'))));
  ui.list.render(true);
}

/** Puts a query first in the history (the search box's suggestions). */
function remember(q) {
  if (!q || q === '*') return;
  store('logyard.history', [q, ...stored('logyard.history').filter((x) => x !== q)].slice(0, HISTORY));
  fillHistory();
}

/** Asks for the saved queries again (on the server once signed in), then shows them. */
async function loadSaved() {
  let saved = [];
  try { saved = await listSaved(); } catch (e) { alertBox('Cannot read the saved queries: ' + e.message); }
  if (!ui) return;
  ui.saved = saved;
  fillHistory();
}

/** The search box's suggestions (saved queries first, then the recent ones), the "Saved…"
 *  list, and "Unsave" when the query shown is a saved one. */
function fillHistory() {
  if (!ui) return;
  const saved = ui.saved || [];
  const recent = stored('logyard.history').filter((q) => !saved.some((s) => s.q === q));
  mount(ui.historyList, saved.map((s) => h('option', { value: s.q, label: '★ ' + s.name })), recent.map((q) => h('option', { value: q })));
  mount(ui.savedSel, h('option', { value: '' }, saved.length ? 'Saved…' : 'No saved query'),
    saved.map((s, i) => h('option', { value: String(i) }, s.name)));
  ui.savedSel.disabled = !saved.length;
  const current = saved.find((s) => s.q === (readQ() || '*'));
  ui.unsave.hidden = !current;
  ui.unsave.dataset.name = current?.name || '';
  ui.unsave.title = current ? `forget the saved query "${current.name}"` : '';
}

let ui = null; // the explorer's elements while it is shown

/** Shows the explorer for a state; rebuilds only what the state change needs. */
export function showExplorer(root, s) {
  if (!ui || !root.contains(ui.el)) ui = build(root);
  const key = JSON.stringify([s.q, s.range, s.from, s.to, s.order]);
  syncControls(s);
  if (key !== ui.key) {
    ui.key = key;
    search(s);
  }
  setTail(s);
  setAutoRefresh(s);
}

/** Runs the search of the current state again, changed or not (a relative range moves
 *  to now); also draws every time anew in the zone chosen. */
export function rerun() {
  if (!ui) return;
  ui.key = null;
  emit();
}

/** Re-runs the search every `s.refresh` while the page is visible and no tail runs. */
function setAutoRefresh(s) {
  const every = EVERY.find(([k]) => k === s.refresh)?.[1] || 0;
  ui.every.value = every ? s.refresh : '';
  if (ui.refreshEvery === every) return;
  clearInterval(ui.refreshTimer);
  ui.refreshEvery = every;
  ui.refreshTimer = every ? setInterval(() => {
    if (!document.hidden && !tail) rerun();
  }, every) : 0;
}

/** Stops what runs in the background (tail, requests) when another view shows. */
export function leaveExplorer() {
  if (!ui) return;
  ui.abort?.abort();
  clearInterval(ui.refreshTimer);
  stopTail();
  ui = null;
}

function build(root) {
  const input = h('input#q', { type: 'search', placeholder: 'Search: error agent:web-* level:>=WARNING "connection refused" | stats count() by (agent)', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'query',
    title: 'Words and phrases match their case: Timeout is not timeout. i(timeout) or i("conn refused") match any case.' });
  const historyList = h('datalist#qhistory');
  input.setAttribute('list', 'qhistory');
  const saveBtn = h('button#save', { type: 'button', title: 'keep this query (and its time range) under a name' }, 'Save');
  saveBtn.addEventListener('click', async () => {
    const s = readState();
    const q = s.q || '*';
    const name = prompt('Name of the saved query', q.slice(0, 40))?.trim();
    if (!name) return;
    try { await saveQuery(name, q, s.from || s.to ? '' : s.range); } catch (e) { alertBox('Cannot save the query: ' + e.message); return; }
    loadSaved();
  });
  const unsave = h('button#unsave', { type: 'button', hidden: true }, 'Unsave');
  unsave.addEventListener('click', async () => {
    try { await deleteSaved(unsave.dataset.name); } catch (e) { alertBox('Cannot forget the query: ' + e.message); return; }
    loadSaved();
  });
  const savedSel = h('select#saved', { 'aria-label': 'saved queries' });
  savedSel.addEventListener('change', () => {
    const s = ui.saved?.[Number(savedSel.value)];
    savedSel.value = '';
    if (s) setState(s.range ? { q: s.q === '*' ? '' : s.q, range: s.range } : { q: s.q === '*' ? '' : s.q });
  });
  const form = h('form.search', { role: 'search' }, input, historyList, h('button.primary', { type: 'submit' }, 'Search'));
  // Enter on an unchanged query runs it again, as the refresh button does.
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (q === readQ()) rerun(); else setState({ q });
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { input.value = ''; clearError(); if (readQ()) setState({ q: '' }); }
  });
  const rangeSel = h('select#range', { 'aria-label': 'time range' },
    RELATIVE.map(([k]) => h('option', { value: k }, 'Last ' + k)),
    h('option', { value: 'all' }, 'All time'),
    h('option', { value: 'custom' }, 'Custom…'));
  const timeInput = (id, label) => h('input#' + id, { type: 'text', 'aria-label': label, autocomplete: 'off', spellcheck: 'false',
    placeholder: id === 'from' ? 'now-2h or 2024-01-15 10:30:00' : 'now (empty) or 2024-01-15 12:00:00' });
  const fromIn = timeInput('from', 'from');
  const toIn = timeInput('to', 'to');
  const zoneTag = h('span.muted.small.zonetag');
  const custom = h('form.custom', { hidden: true },
    fromIn, h('span.muted', null, '→'), toIn, zoneTag, h('button', { type: 'submit' }, 'Apply'));
  custom.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // Typed in the chosen zone (or with their own offset), `now-2h` relative to now.
    const read = (input) => {
      const v = input.value.trim();
      if (!v) return '';
      const t = parseInput(v);
      input.setCustomValidity(isNaN(t) ? 'a time such as 2024-01-15 10:30:00, 2024-01-15T10:30:00Z or now-2h' : '');
      return isNaN(t) ? null : new Date(t).toISOString();
    };
    const from = read(fromIn), to = read(toIn);
    if (from === null || to === null) { custom.reportValidity(); return; }
    setState({ from, to, range: '' });
  });
  for (const input of [fromIn, toIn]) input.addEventListener('input', () => input.setCustomValidity(''));
  rangeSel.addEventListener('change', () => {
    if (rangeSel.value === 'custom') { custom.hidden = false; fromIn.focus(); return; }
    custom.hidden = true;
    setState({ range: rangeSel.value });
  });
  const zoomOut = h('button#zoomout', { type: 'button', title: 'zoom out: twice the range, same middle', hidden: true }, 'Zoom out');
  zoomOut.addEventListener('click', () => {
    const s = new URLSearchParams(location.search);
    const a = Date.parse(s.get('from') || ''), b = Date.parse(s.get('to') || '') || Date.now();
    if (isNaN(a)) return;
    const mid = (a + b) / 2, half = Math.max(b - a, 60e3);
    setState({ from: new Date(mid - half).toISOString(), to: new Date(Math.min(mid + half, Date.now())).toISOString(), range: '' });
  });
  const refreshBtn = h('button#refresh', { type: 'button', title: 'run the search again (a relative range moves to now)' }, 'Refresh');
  refreshBtn.addEventListener('click', () => rerun());
  const every = h('select#every', { 'aria-label': 'auto-refresh', title: 'run the search again every…' },
    h('option', { value: '' }, 'Auto-refresh off'),
    EVERY.map(([k]) => h('option', { value: k }, 'Every ' + k)));
  every.addEventListener('change', () => setState({ refresh: every.value }, { replace: true }));
  const tailBtn = h('button#tail.toggle', { type: 'button', 'aria-pressed': 'false', title: 'stream new matching entries' }, h('i.dot'), 'Live');
  // The live tail puts new entries on top: it shows the newest first.
  tailBtn.addEventListener('click', () => setState(tailBtn.getAttribute('aria-pressed') === 'true' ? { tail: '' } : { tail: '1', order: '' }));
  const pauseBtn = h('button#pause', { type: 'button', hidden: true }, 'Pause');
  pauseBtn.addEventListener('click', () => togglePause());
  const qerror = h('div.qerror', { hidden: true, role: 'alert' });
  const casehint = h('div.casehint', { hidden: true, role: 'status' });
  const histo = h('div.histwrap#histogram');
  const summary = h('div.summary');
  const facets = h('aside.facets', { 'aria-label': 'facets' });
  // Export: the current query over the current range, as the API streams it.
  const exportLink = (format, text) => h('a.export', { href: '#', dataset: { format }, title: `download every match of this query in this range as ${text}`,
    onclick: (ev) => { ev.currentTarget.href = exportUrl(format); } }, text);
  // Columns: fields shown in every row, chosen in this browser.
  const colIn = h('input#addcol', { type: 'text', placeholder: 'field', 'aria-label': 'add a column', autocomplete: 'off', spellcheck: 'false' });
  const colForm = h('form.addcol', { title: 'show a field as a column of the list' }, colIn, h('button', { type: 'submit' }, '+ Column'));
  const colTags = h('span.coltags');
  colForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = colIn.value.trim();
    const cols = stored('logyard.columns');
    if (!/^[\p{L}\p{N}_.@-]+$/u.test(f) || cols.includes(f)) { colIn.select(); return; }
    store('logyard.columns', [...cols, f]);
    colIn.value = '';
    setColumns();
  });
  // The list's order (kept in the URL) and whether long messages wrap (kept in this browser).
  const orderSel = h('select#order', { 'aria-label': 'order', title: 'the order of the entries (oldest first stops the live tail)' },
    h('option', { value: '' }, 'Newest first'), h('option', { value: 'asc' }, 'Oldest first'));
  orderSel.addEventListener('change', () => setState(orderSel.value ? { order: orderSel.value, tail: '' } : { order: '' }));
  const wrapBtn = h('button#wrap.toggle', { type: 'button', 'aria-pressed': 'false', title: 'show long and multi-line messages whole, over several lines' }, 'Wrap');
  wrapBtn.addEventListener('click', () => {
    const on = wrapBtn.getAttribute('aria-pressed') !== 'true';
    try { localStorage.setItem('logyard.wrap', on ? '1' : ''); } catch { /* not kept */ }
    setWrap(on);
  });
  const listOpts = h('span.listopts', null, orderSel, wrapBtn);
  const exportBox = h('span.exports', null, 'Export ', exportLink('csv', 'CSV'), ' · ', exportLink('ndjson', 'NDJSON'));
  const facetBtn = h('button.facet-toggle', { type: 'button', onclick: () => facets.classList.toggle('shown') }, 'Facets');
  const tableBox = h('div.tablebox', { hidden: true });
  const list = new LogList({
    fetchMore: () => more(),
    expand: (e) => getJSON(`/api/logs/${encodeURIComponent(e.id)}/context`, { before: 0, after: 0, include_raw: 'true' })
      .then((r) => r.logs.find((x) => x.id === e.id) || e),
    onContext: (e) => openContext(e),
    onFilter: (k, v) => setState({ q: addFilter(readQ(), k, v) }),
    onBackToTop: () => { ui.key = null; emit(); },
  });
  const main = h('section.results', { onpointerdown: (ev) => { if (!ev.target.closest('.facet-toggle')) facets.classList.remove('shown'); } }, histo, h('div.bar', null, summary, listOpts, colTags, colForm, exportBox, facetBtn), qerror, casehint, tableBox, list.el);
  const el = h('div.explore', null,
    h('div.toolbar', null, form, h('div.rangebox', null, rangeSel, custom, zoomOut), refreshBtn, every, tailBtn, pauseBtn, saveBtn, unsave, savedSel),
    h('div.body', null, facets, main));
  mount(root, el);
  queueMicrotask(loadSaved);
  queueMicrotask(setColumns);
  queueMicrotask(() => setWrap(localStorage.getItem('logyard.wrap') === '1'));
  return { el, colTags, input, form, historyList, savedSel, unsave, orderSel, wrapBtn, rangeSel, custom, zoomOut, fromIn, toIn, zoneTag, every, tailBtn, pauseBtn, qerror, casehint, histo, summary, facets, tableBox, list, key: null, refreshTimer: 0, refreshEvery: 0 };
}

function readQ() { return new URLSearchParams(location.search).get('q') || ''; }

/** Wraps the list's long messages, or shows them on one line. */
function setWrap(on) {
  if (!ui) return;
  ui.wrapBtn.setAttribute('aria-pressed', String(on));
  ui.list.setWrap(on);
}

function syncControls(s) {
  ui.input.value = s.q;
  ui.orderSel.value = s.order === 'asc' ? 'asc' : '';
  ui.list.oldestFirst = s.order === 'asc';
  fillHistory();
  const custom = !!(s.from || s.to);
  ui.rangeSel.value = custom ? 'custom' : (s.range || 'all');
  ui.custom.hidden = !custom;
  ui.zoomOut.hidden = !s.from;
  if (custom) { ui.fromIn.value = toInput(s.from); ui.toIn.value = toInput(s.to); }
  ui.zoneTag.textContent = zoneLabel();
  ui.rangeSel.title = rangeLabel(s);
}

/** Runs the search of a state: the list first, then histogram and facets in parallel. */
async function search(s) {
  ui.abort?.abort();
  const abort = new AbortController();
  ui.abort = abort;
  const signal = abort.signal;
  const q = s.q || '*';
  const range = rangeOf(s);
  ui.range = range;
  ui.q = q;
  ui.order = s.order === 'asc' ? 'asc' : '';
  clearError();
  ui.list.loading = true;
  ui.list.setStatus('');
  ui.summary.textContent = 'Searching…';
  ui.listInfo = null;
  ui.facetTotal = null;
  ui.casehint.hidden = true;
  ui.el.classList.add('busy');
  const filter = splitPipes(q)[0] || '*';
  ui.list.terms = searchTerms(filter);
  const list = query(q, range, { limit: PAGE, order: ui.order }, { signal });
  // Started at once, drawn when they come: they never hold the list back. Over all time,
  // the histogram spans the matching entries, from the oldest to the newest, rather than
  // the whole store up to now.
  if (range.start || range.end) histogram(filter, range, signal);
  else dataSpan(filter, signal).then((span) => histogram(filter, span, signal), () => histogram(filter, range, signal));
  facets(filter, range, signal);
  try {
    const res = await list;
    ui.el.classList.remove('busy');
    ui.list.loading = false;
    if (res.columns) {
      remember(s.q);
      ui.tableBox.hidden = false;
      ui.list.el.hidden = true;
      mount(ui.tableBox, res.rows.length ? resultTable(q, res.columns, res.rows) : emptyState('No rows', 'The query matched nothing in this range.'));
      ui.summary.textContent = `${res.rows.length} rows · ${costText(res.cost)}${res.partial ? ' · partial: ' + res.reason : ''}`;
      return;
    }
    ui.tableBox.hidden = true;
    ui.list.el.hidden = false;
    remember(s.q);
    ui.list.reset(res.logs, !!res.next_cursor);
    ui.listInfo = res;
    renderSummary();
    if (res.logs.length < FEW && !res.next_cursor) caseHint(q, range, res.logs.length, signal);
    if (!res.logs.length) ui.list.setStatus(s.q ? 'No entry matches this query in this range.' : 'No entries yet. Send some with POST /api/logs.');
  } catch (e) {
    if (e.name === 'AbortError') return;
    ui.el.classList.remove('busy');
    ui.list.loading = false;
    ui.list.reset([], false);
    ui.summary.textContent = '';
    showError(q, e);
  }
}

/**
 * The answer of a `| histogram STEP [by f]` pipe (columns `t`, [`f`], `count`) drawn as the
 * explorer's histogram: stacked by level when `f` is `level`, else the totals; a bar or a
 * span of bars zooms the range. Null for any other answer.
 */
function histogramChart(q, columns, rows) {
  const step = /\|\s*histogram\s+(\S+)/.exec(q)?.[1];
  const ti = columns.indexOf('t'), ci = columns.indexOf('count');
  if (!step || ti < 0 || ci < 0) return null;
  const by = columns.length === 3 ? columns.find((c, i) => i !== ti && i !== ci) : null;
  const bi = by ? columns.indexOf(by) : -1;
  const buckets = new Map();
  for (const r of rows) {
    const b = buckets.get(r[ti]) || { t: r[ti], counts: {} };
    const key = by === 'level' ? (r[bi] || 'UNKNOWN') : 'UNKNOWN';
    b.counts[key] = (b.counts[key] || 0) + (r[ci] || 0);
    buckets.set(r[ti], b);
  }
  const answer = { step, buckets: [...buckets.values()].sort((a, b) => Date.parse(a.t) - Date.parse(b.t)) };
  const el = h('div.histwrap.pipechart');
  return { el, draw: () => drawHistogram(el, answer, (start, end) => setState({ from: start, to: end, range: '' })) };
}

/**
 * A table answer: a bar chart of its first number by its group columns (`stats … by`), and
 * the table, sortable by any column; a row opens the explorer filtered to its group.
 */
function resultTable(q, columns, rows) {
  const numeric = columns.map((_, i) => rows.some((r) => typeof r[i] === 'number') && rows.every((r) => r[i] === null || typeof r[i] === 'number'));
  // Group columns: fields the query grouped by (not computed, not the time buckets).
  const groups = columns.map((c, i) => !numeric[i] && /^[\p{L}\p{N}_.@-]+$/u.test(c) && !c.startsWith('_') ? i : -1).filter((i) => i >= 0);
  const filter = splitPipes(q)[0] || '*';
  const open = groups.length ? (r) => {
    let f = filter;
    for (const i of groups) if (r[i] !== null && r[i] !== undefined) f = addFilter(f, columns[i], r[i]);
    setState({ q: f });
  } : null;
  const value = numeric.indexOf(true);
  const chart = open && value >= 0 && rows.length > 1
    ? barList([...rows].sort((a, b) => (b[value] ?? 0) - (a[value] ?? 0)).slice(0, 30).map((r) => ({
      label: groups.map((i) => r[i] ?? '(none)').join(' · '),
      value: r[value],
      title: `${columns[value]} ${r[value]}: open these entries`,
      onclick: () => open(r),
    })))
    : null;
  const box = h('div.resulttable');
  const timeChart = histogramChart(q, columns, rows);
  let sort = null; // [column, 1 | -1]
  const draw = () => {
    const sorted = sort === null ? rows : [...rows].sort((a, b) => {
      const [i, dir] = sort;
      const x = a[i], y = b[i];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (numeric[i] ? x - y : String(x).localeCompare(String(y))) * dir;
    });
    const t = table(columns, sorted);
    t.querySelectorAll('thead th').forEach((th, i) => {
      if (numeric[i]) th.classList.add('num');
      th.classList.add('sortable');
      th.tabIndex = 0;
      th.setAttribute('aria-sort', sort?.[0] === i ? (sort[1] > 0 ? 'ascending' : 'descending') : 'none');
      th.title = 'sort by ' + columns[i];
      const flip = () => { sort = [i, sort?.[0] === i ? -sort[1] : (numeric[i] ? -1 : 1)]; draw(); };
      th.addEventListener('click', flip);
      th.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') flip(); });
    });
    if (open) {
      t.querySelectorAll('tbody tr').forEach((tr, k) => {
        tr.classList.add('click');
        tr.title = 'open these entries';
        tr.addEventListener('click', () => open(sorted[k]));
      });
    }
    mount(box, timeChart?.el, chart, t);
    if (timeChart) requestAnimationFrame(timeChart.draw);
  };
  draw();
  return box;
}

/** When the words of a query that found few entries would find more whatever their case,
 *  says so and offers the query with `i(…)` in one click. */
async function caseHint(q, range, found, signal) {
  const [filter, pipes] = splitPipes(q);
  const alt = caseless(filter);
  if (!alt) return;
  try {
    const rows = rowsOf(await query(`${alt} | stats count()`, range, {}, { signal }));
    const n = rows[0]?.['count()'] || 0;
    if (n <= found || signal.aborted) return;
    const next = pipes ? `${alt} ${pipes}` : alt;
    mount(ui.casehint,
      `Words match their case: ${fmtCount(n)} ${n === 1 ? 'entry matches' : 'entries match'} whatever the case. `,
      h('button.link#casefix', { type: 'button', onclick: () => setState({ q: next }) }, `Search ${next}`));
    ui.casehint.hidden = false;
  } catch { /* no hint */ }
}

/** The time range of the entries a filter matches: from the oldest to just after the
 *  newest (two one-entry pages, oldest and newest first); open ends when none matches. */
async function dataSpan(filter, signal) {
  const edge = (order) => query(filter, {}, { limit: 1, order }, { signal })
    .then((r) => Date.parse(r.logs?.[0]?.timestamp || ''));
  const [oldest, newest] = await Promise.all([edge('asc'), edge('')]);
  return {
    start: isNaN(oldest) ? undefined : new Date(oldest).toISOString(),
    end: isNaN(newest) ? undefined : new Date(newest + 1).toISOString(),
  };
}

/** The count of matches and the cost of the list. A page counts its matches only as far as
 *  is cheap (total_exact false): the level facet's counts, once they come, give the total. */
function renderSummary() {
  if (tail && tail.added) { liveSummary(); return; }
  const res = ui.listInfo;
  if (!res) return;
  const exact = res.total_exact !== false;
  const total = exact ? res.total : ui.facetTotal;
  const count = total === null || total === undefined
    ? `${fmtCount(res.total)}+ entries`
    : `${fmtCount(total)} ${total === 1 ? 'entry' : 'entries'}`;
  ui.summary.textContent = `${count} · ${costText(res.cost)}${res.partial ? ' · partial: ' + res.reason : ''}`;
}

function costText(c) {
  if (!c) return '';
  return `${fmtCount(c.rows_scanned)} rows scanned in ${c.elapsed_ms < 10 ? c.elapsed_ms.toFixed(1) : Math.round(c.elapsed_ms)} ms`;
}

async function more() {
  const l = ui.list;
  if (l.loading || !l.hasMore) return;
  l.loading = true;
  l.renderFoot();
  const signal = ui.abort?.signal;
  try {
    const res = await query(ui.q, ui.range, { limit: PAGE, cursor: l.lastId(), order: ui.order }, { signal });
    l.loading = false;
    l.append(res.logs || [], !!res.next_cursor);
  } catch (e) {
    if (e.name === 'AbortError') return;
    l.loading = false;
    l.setStatus('Cannot load more: ' + e.message, true);
  }
}

async function histogram(filter, range, signal) {
  ui.histo.classList.add('loading');
  try {
    const res = await getJSON('/api/histogram', { q: filter, start: range.start, end: range.end }, { signal });
    ui.histo.classList.remove('loading');
    drawHistogram(ui.histo, res, (start, end) => setState({ from: start, to: end, range: '' }), { height: innerWidth <= 760 ? 84 : 96 });
  } catch (e) {
    if (e.name === 'AbortError') return;
    ui.histo.classList.remove('loading');
    mount(ui.histo, h('div.muted.small', null, e.code === 'query_syntax' ? '' : 'No histogram: ' + e.message));
  }
}

/** The facets beside the list: fields whose values are counted over the same filter and range. */
const FACETS = [['Level', 'level'], ['Agent', 'agent'], ['Host', 'host'], ['Source', 'source']];
const FACET_TOP = 20; // values shown before "N more"

async function facets(filter, range, signal) {
  const by = (f) => query(`${filter} | stats count() by (${f})`, range, {}, { signal }).then(rowsOf)
    .catch((e) => (e.name === 'AbortError' ? Promise.reject(e) : []));
  // The fixed facets, then the fields added in this browser: a field's values are read from
  // the fields of every matching entry, the costliest scan, so they are asked for once the
  // fixed ones have come and do not hold them (or the histogram) back.
  const extra = stored('logyard.facets');
  const all = [...FACETS, ...extra.map((f) => [f, f])];
  const answers = all.map(() => null); // null: still counting
  const addIn = h('input#addfacet', { type: 'text', placeholder: 'a field, e.g. status', 'aria-label': 'add a facet', autocomplete: 'off', spellcheck: 'false' });
  const add = h('form.addfacet', null, addIn, h('button', { type: 'submit' }, 'Add facet'));
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = addIn.value.trim();
    if (!/^[\p{L}\p{N}_.@-]+$/u.test(f) || all.some(([, x]) => x === f)) { addIn.select(); return; }
    store('logyard.facets', [...extra, f]);
    facets(filter, range, ui.abort?.signal);
  });
  const removable = (field, el) => {
    if (!extra.includes(field)) return el;
    el.querySelector('h3').append(h('button.fx.unfacet', { type: 'button', title: `remove the ${field} facet`, 'aria-label': `remove facet ${field}`,
      onclick: () => { store('logyard.facets', extra.filter((x) => x !== field)); facets(filter, range, ui.abort?.signal); } }, '×'));
    return el;
  };
  const draw = () => {
    if (signal?.aborted || !ui) return;
    mount(ui.facets, all.map(([title, field], i) => {
      if (answers[i] === null) return removable(field, h('section.facet', { dataset: { field } }, h('h3', null, title), h('p.muted.small.counting', null, 'counting…')));
      let rows = answers[i].map((r) => [r[field] ?? null, r['count()']]);
      if (field === 'level') {
        rows = rows.map(([v, n]) => [v || 'UNKNOWN', n]).sort((a, b) => LEVELS.indexOf(a[0]) - LEVELS.indexOf(b[0]));
        return facetGroup(title, field, rows, (v) => h('span.lvl.' + levelClass(v), null, v));
      }
      rows.sort((a, b) => b[1] - a[1]);
      return removable(field, facetGroup(title, field, rows, (v) => v ?? '(none)'));
    }), add);
  };
  try {
    const fixed = await Promise.all(FACETS.map(([, f]) => by(f)));
    fixed.forEach((a, i) => { answers[i] = a; });
    ui.facetTotal = fixed[0].reduce((n, r) => n + r['count()'], 0);
    renderSummary();
    draw();
    await Promise.all(extra.map((f, k) => by(f).then((a) => { answers[FACETS.length + k] = a; draw(); })));
  } catch (e) {
    if (e.name === 'AbortError') return;
    mount(ui.facets, h('div.muted.small', null, e.code === 'query_syntax' ? '' : 'No facets: ' + e.message));
  }
}

/** The URL of /api/export for the current query and range (a relative range up to now). */
function exportUrl(format) {
  const s = readState();
  const range = rangeOf(s);
  const p = new URLSearchParams({ q: s.q || '*', format });
  if (range.start) p.set('start', range.start);
  if (range.end) p.set('end', range.end);
  return '/api/export?' + p.toString();
}

/** The negation of `field:value` added to the filter of q (before any pipe). */
function excludeFilter(q, field, value) {
  const term = '-' + addFilter('', field, value);
  const [filter, pipes] = splitPipes(q || '');
  const f = filter && filter !== '*' ? `${filter} ${term}` : term;
  return pipes ? `${f} ${pipes}` : f;
}

/** One facet: its values with their counts, the top ones first and the rest behind "N more";
 *  a value adds `field:value` to the query, its `−` adds `-field:value`. */
function facetGroup(title, field, rows, label) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  // Entries without a level or with no value of the field cannot be named in a filter.
  const usable = (v) => v !== null && !(field === 'level' && v === 'UNKNOWN');
  const item = ([v, n]) => h('li.fitem', null,
    h('button.fv', { type: 'button', title: usable(v) ? `only ${field}:${v}` : 'entries without this field', disabled: !usable(v),
      onclick: () => { ui.facets.classList.remove('shown'); setState({ q: addFilter(readQ(), field, v) }); } },
      h('span.fl', null, label(v)), h('span.fn', null, fmtCount(n)),
      h('span.fb', { style: `width:${(n / max) * 100}%` })),
    usable(v) ? h('button.fx', { type: 'button', title: `leave out ${field}:${v}`, 'aria-label': `exclude ${field} ${v}`,
      onclick: () => { ui.facets.classList.remove('shown'); setState({ q: excludeFilter(readQ(), field, v) }); } }, '−') : null);
  const list = h('ul', null, rows.slice(0, FACET_TOP).map(item));
  const rest = rows.length - FACET_TOP;
  const more = rest > 0 ? h('button.link.more', { type: 'button', onclick: () => { list.append(...rows.slice(FACET_TOP).map(item)); more.remove(); } }, `${rest} more`) : null;
  return h('section.facet', { dataset: { field } },
    h('h3', null, title),
    rows.length ? list : h('p.muted.small', null, 'none'),
    more);
}

function showError(q, e) {
  ui.qerror.hidden = false;
  ui.input.classList.toggle('bad', e.code === 'query_syntax');
  if (e.code === 'query_syntax' && e.position !== undefined) {
    const i = byteToIndex(q, e.position);
    mount(ui.qerror,
      h('div', null, h('strong', null, 'Syntax error'), ` at position ${e.position}: ${e.message}`),
      h('pre.where', null, q.slice(0, i), h('mark', null, q.slice(i, i + 1) || ' '), q.slice(i + 1), '\n', ' '.repeat(i) + '^'));
    if (document.activeElement === ui.input || !document.activeElement || document.activeElement === document.body) {
      ui.input.focus();
      ui.input.setSelectionRange(i, i);
    }
  } else {
    mount(ui.qerror, h('div', null, h('strong', null, e.code === 'query_syntax' ? 'Syntax error' : 'Error'), ': ' + e.message));
  }
}

function clearError() {
  ui.qerror.hidden = true;
  ui.input.classList.remove('bad');
}

async function openContext(e) {
  try {
    const res = await getJSON(`/api/logs/${encodeURIComponent(e.id)}/context`, { before: 25, after: 25, include_raw: 'true' });
    contextDialog(e, res.logs, e.source ? () => {
      const t = new Date(e.timestamp).getTime();
      setState({ q: addFilter('', 'source', e.source), from: new Date(t - 5 * 60e3).toISOString(), to: new Date(t + 5 * 60e3).toISOString(), range: '' });
    } : null);
  } catch (err) {
    alertBox('Cannot load the context: ' + err.message);
  }
}

function alertBox(text) {
  const d = h('div.toast', { role: 'status' }, text);
  document.body.append(d);
  setTimeout(() => d.remove(), 4000);
}

// Live tail ------------------------------------------------------------------------------

let tail = null; // {es, q, queue, paused, dropped, timer}

function setTail(s) {
  const on = s.tail === '1';
  const filter = splitPipes(s.q || '*')[0] || '*';
  ui.tailBtn.setAttribute('aria-pressed', String(on));
  ui.pauseBtn.hidden = !on;
  if (!on) { stopTail(); return; }
  if (tail && tail.q === filter) return;
  stopTail();
  const es = new EventSource('/api/tail?q=' + encodeURIComponent(filter));
  // added: entries the tail showed; since: those since the counts were last asked for.
  tail = { es, q: filter, queue: [], paused: false, dropped: 0, timer: 0, added: 0, since: 0, counted: Date.now() };
  ui.el.classList.add('live');
  es.onmessage = (ev) => {
    const t = tail;
    if (!t || t.es !== es) return;
    try { t.queue.unshift(JSON.parse(ev.data)); } catch { return; }
    if (t.queue.length > TAIL_QUEUE) { t.dropped += t.queue.length - TAIL_QUEUE; t.queue.length = TAIL_QUEUE; }
    if (!t.paused && !t.timer) t.timer = setTimeout(flushTail, 200);
    if (t.paused) pauseLabel();
  };
  es.addEventListener('lagged', (ev) => {
    try { if (tail) tail.dropped += JSON.parse(ev.data).missed_batches; } catch { /* ignore */ }
  });
  es.onerror = () => { ui?.tailBtn.classList.toggle('err', es.readyState !== EventSource.OPEN); };
  es.onopen = () => ui?.tailBtn.classList.remove('err');
  pauseLabel();
}

function flushTail() {
  const t = tail;
  if (!t || !ui) return;
  t.timer = 0;
  if (t.paused || !t.queue.length) return;
  const batch = t.queue;
  t.queue = [];
  ui.list.el.hidden = false;
  ui.tableBox.hidden = true;
  ui.list.prepend(batch);
  ui.list.setStatus('');
  t.added += batch.length;
  t.since += batch.length;
  liveSummary();
  // The histogram and facets follow, a few seconds apart.
  if (Date.now() - t.counted >= LIVE_COUNTS_EVERY) {
    t.counted = Date.now();
    t.since = 0;
    const range = rangeOf(readState());
    histogram(t.q, range, ui.abort?.signal);
    facets(t.q, range, ui.abort?.signal);
  }
}

/** The summary while live: the count of the search plus what the tail added. */
function liveSummary() {
  const t = tail;
  if (!t || !ui) return;
  const base = ui.facetTotal ?? (ui.listInfo?.total_exact !== false ? ui.listInfo?.total : null);
  const count = typeof base === 'number' ? `${fmtCount(base + t.since)} entries · ` : '';
  ui.summary.textContent = `${count}Live · ${fmtCount(t.added)} new` + (t.dropped ? ` · ${t.dropped} skipped` : '');
}

function togglePause() {
  if (!tail) return;
  tail.paused = !tail.paused;
  if (!tail.paused) flushTail();
  pauseLabel();
}

function pauseLabel() {
  if (!ui || !tail) return;
  ui.pauseBtn.textContent = tail.paused ? `Resume${tail.queue.length ? ` (${tail.queue.length} new)` : ''}` : 'Pause';
  ui.pauseBtn.setAttribute('aria-pressed', String(tail.paused));
}

function stopTail() {
  if (!tail) return;
  tail.es.close();
  clearTimeout(tail.timer);
  tail = null;
  ui?.el.classList.remove('live');
}
