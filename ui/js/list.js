// The result list: a window over any number of entries. Only the rows near the viewport
// are in the DOM (spacers stand for the rest), loaded entries are bounded too (the far end
// is dropped and can be fetched again), and the next page is fetched before the end shows.
// Rows are one line high unless expanded or wrapped: the height of those is measured once
// they are drawn, and the rows not drawn yet count as one line until then.

import { h, mount, levelClass } from './dom.js';
import { fmtTime, zoneLabel } from './time.js';

const OVERSCAN = 30;        // rows rendered beyond each edge of the viewport
export const MAX_DOM = 160; // never more rows than this in the DOM
export const MAX_KEEP = 5000; // never more entries than this in memory
const WRAP_CHARS = 4000; // characters of a wrapped message shown in its row (all when expanded)

export class LogList {
  /**
   * opts.fetchMore(): loads the next page (called near the end when hasMore);
   * opts.expand(entry): a Promise of the entry with `raw`; opts.onContext(entry);
   * opts.onFilter(field, value); opts.onBackToTop().
   */
  constructor(opts) {
    this.opts = opts;
    this.entries = [];
    this.index = new Map();   // id → position
    this.open = new Set();    // ids of the expanded entries
    this.extra = new Map();   // id of an expanded or wrapped entry → its measured extra height in px
    this.wrap = false;        // messages wrapped over as many lines as they need
    this.oldestFirst = false; // the entries come oldest first (the banner says so)
    this.details = new Map(); // id → entry with raw, once fetched
    this.hasMore = false;
    this.loading = false;
    this.dropped = 0;         // newer entries dropped from the top
    this.status = '';
    this.rowH = 28;
    this.terms = []; // the query's words and phrases, marked in messages ({text, anyCase})
    this.columns = []; // fields shown as columns between the host and the message
    this.top = h('div.spacer');
    this.rows = h('div.rows', { role: 'list' });
    this.bottom = h('div.spacer');
    this.banner = h('div.banner', { hidden: true });
    this.foot = h('div.foot');
    this.el = h('div.list', { tabindex: '-1' }, this.banner, this.top, this.rows, this.bottom, this.foot);
    this.el.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.el);
    this.rendered = [-1, -1];
  }

  /** Replaces every entry (a new search). */
  reset(entries, hasMore) {
    this.entries = entries.slice();
    this.extra.clear();
    this.open.clear();
    this.dropped = 0;
    this.hasMore = hasMore;
    this.status = '';
    this.reindex();
    this.el.scrollTop = 0;
    this.render(true);
  }

  /** Appends an older page. */
  append(entries, hasMore) {
    this.entries.push(...entries);
    this.hasMore = hasMore;
    if (this.entries.length > MAX_KEEP) {
      const n = this.entries.length - MAX_KEEP + 1000;
      const lost = this.heightOf(0, n);
      for (const e of this.entries.slice(0, n)) { this.extra.delete(e.id); this.open.delete(e.id); }
      this.entries.splice(0, n);
      this.dropped += n;
      this.reindex();
      this.el.scrollTop = Math.max(0, this.el.scrollTop - lost);
    }
    this.render(true);
  }

  /** Puts new entries (newest first) above the others, as the live tail receives them. */
  prepend(entries) {
    if (!entries.length) return;
    const atTop = this.el.scrollTop < 4;
    const before = this.el.scrollTop;
    this.entries.unshift(...entries);
    for (const e of entries) e._new = true;
    if (this.entries.length > MAX_KEEP) {
      for (const e of this.entries.slice(MAX_KEEP)) { this.extra.delete(e.id); this.open.delete(e.id); }
      this.entries.length = MAX_KEEP;
      this.hasMore = true; // the dropped ones can be fetched again from the last id
    }
    this.reindex();
    if (!atTop) this.el.scrollTop = before + this.heightOf(0, entries.length);
    this.render(true);
  }

  /** The id after which the next, older page starts. */
  lastId() { return this.entries.length ? this.entries[this.entries.length - 1].id : null; }

  setStatus(text, isError = false) {
    this.status = text;
    this.statusError = isError;
    this.renderFoot();
  }

  reindex() {
    this.index = new Map(this.entries.map((e, i) => [e.id, i]));
  }

  /** Wraps long and multi-line messages (on), or shows each on one line (off). */
  setWrap(on) {
    if (this.wrap === on) return;
    this.wrap = on;
    this.el.classList.toggle('wrap', on);
    for (const id of [...this.extra.keys()]) if (!this.open.has(id)) this.extra.delete(id);
    this.render(true);
    for (const id of this.open) this.measure(id);
  }

  /** The entries taller than a row as sorted [position, extra px]. */
  expandedSorted() {
    const out = [];
    for (const [id, px] of this.extra) {
      const i = this.index.get(id);
      if (i !== undefined) out.push([i, px]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Height of entries [a, b). */
  heightOf(a, b) {
    let px = (b - a) * this.rowH;
    for (const [i, x] of this.expandedSorted()) if (i >= a && i < b) px += x;
    return px;
  }

  /** The position of the entry at y px from the top of the rows. */
  indexAt(y) {
    let acc = 0;
    for (const [i, x] of this.expandedSorted()) {
      const start = i * this.rowH + acc;
      if (y < start) break;
      if (y < start + this.rowH + x) return i;
      acc += x;
    }
    return Math.max(0, Math.floor((y - acc) / this.rowH));
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.render(false); });
  }

  render(force) {
    const n = this.entries.length;
    const bannerH = this.banner.hidden ? 0 : this.banner.offsetHeight;
    const scroll = Math.max(0, this.el.scrollTop - bannerH);
    const view = this.el.clientHeight || 600;
    let first = Math.max(0, this.indexAt(scroll) - OVERSCAN);
    let last = Math.min(n, this.indexAt(scroll + view) + 1 + OVERSCAN);
    if (last - first > MAX_DOM) last = first + MAX_DOM;
    if (!force && first === this.rendered[0] && last === this.rendered[1]) {
      this.maybeFetch(scroll, view);
      return;
    }
    this.rendered = [first, last];
    this.top.style.height = this.heightOf(0, first) + 'px';
    this.bottom.style.height = this.heightOf(last, n) + 'px';
    const frag = [];
    for (let i = first; i < last; i++) frag.push(this.entryEl(this.entries[i]));
    mount(this.rows, frag);
    const sample = this.wrap ? null : this.rows.querySelector('.entry:not(.open) > .row');
    if (sample && sample.offsetHeight && Math.abs(sample.offsetHeight - this.rowH) > 0.5) {
      this.rowH = sample.offsetHeight;
      this.render(true);
      return;
    }
    if (this.wrap) this.measureRendered(scroll);
    this.banner.hidden = this.dropped === 0;
    if (this.dropped) {
      mount(this.banner, `${this.dropped} ${this.oldestFirst ? 'older' : 'newer'} entries were unloaded to keep the page light. `,
        h('button.link', { onclick: () => this.opts.onBackToTop() }, this.oldestFirst ? 'Back to the oldest' : 'Back to the newest'));
    }
    this.renderFoot();
    this.maybeFetch(scroll, view);
  }

  /** Measures the wrapped rows just drawn; the content above the viewport keeps its place
   *  on screen when their heights differ from what was counted for them. */
  measureRendered(scroll) {
    const [first] = this.rendered;
    const anchor = this.indexAt(scroll);
    let shift = 0, changed = false;
    for (const el of this.rows.children) {
      const i = this.index.get(el.dataset.id);
      if (i === undefined) continue;
      const px = Math.max(0, el.offsetHeight - this.rowH);
      const old = this.extra.get(el.dataset.id) || 0;
      if (Math.abs(px - old) < 0.5) continue;
      changed = true;
      if (px) this.extra.set(el.dataset.id, px); else this.extra.delete(el.dataset.id);
      if (i < anchor) shift += px - old;
    }
    if (!changed) return;
    this.top.style.height = this.heightOf(0, first) + 'px';
    this.bottom.style.height = this.heightOf(this.rendered[1], this.entries.length) + 'px';
    if (shift) this.el.scrollTop += shift;
  }

  renderFoot() {
    const n = this.entries.length;
    let text = this.status;
    if (!text) {
      if (this.loading) text = 'Loading…';
      else if (this.hasMore) text = 'Scroll for more';
      else text = n ? `End of results · ${n + this.dropped} ${n + this.dropped === 1 ? 'entry' : 'entries'}` : '';
    }
    this.foot.className = 'foot' + (this.statusError ? ' err' : '');
    this.foot.textContent = text;
  }

  maybeFetch(scroll, view) {
    if (!this.hasMore || this.loading) return;
    const total = this.heightOf(0, this.entries.length);
    if (scroll + view * 3 >= total) this.opts.fetchMore();
  }

  entryEl(e) {
    const open = this.open.has(e.id);
    const row = h('div.row', { role: 'listitem', tabindex: '0', 'aria-expanded': open ? 'true' : 'false', dataset: { id: e.id } },
      h('span.caret', { 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      timeEl(e.timestamp),
      h('span.lvl.' + levelClass(e.level), null, e.level || '—'),
      h('span.agent', { title: e.agent || '' }, e.agent || ''),
      h('span.host', { title: e.host || '' }, e.host || ''),
      this.columns.map((c) => {
        const v = columnValue(e, c);
        return h('span.col', { title: `${c}: ${v}`, dataset: { col: c } }, v);
      }),
      h('span.msg', null, marked(this.wrap ? clip(e.message ?? '') : oneLine(e.message ?? ''), this.terms)));
    row.addEventListener('click', () => this.toggle(e));
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.toggle(e); }
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const entry = row.parentElement;
        const next = ev.key === 'ArrowDown' ? entry.nextElementSibling : entry.previousElementSibling;
        const target = next?.querySelector('.row');
        if (target) { target.focus({ preventScroll: true }); target.scrollIntoView({ block: 'nearest' }); }
      }
    });
    const el = h('div.entry' + (open ? '.open' : '') + (e._new ? '.new' : ''), { dataset: { id: e.id } }, row);
    if (e._new) setTimeout(() => { e._new = false; }, 1500);
    if (open) el.append(this.detailEl(e));
    return el;
  }

  detailEl(e) {
    const full = this.details.get(e.id) || e;
    const fields = [
      ['timestamp', full.timestamp ? `${fmtTime(full.timestamp)} ${zoneLabel(Date.parse(full.timestamp))}` : full.timestamp], ['level', full.level], ['agent', full.agent], ['host', full.host],
      ['source', full.source], ['id', full.id],
      ...Object.entries(full.fields || full.metadata || {}).sort(([a], [b]) => a.localeCompare(b)),
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    const filterable = (k) => !['timestamp', 'id'].includes(k);
    return h('div.detail', null,
      h('div.actions', null,
        h('button', { onclick: () => this.opts.onContext(full), title: 'the lines around this one, from the same source' }, 'Show context'),
        h('button', { onclick: () => navigator.clipboard?.writeText(JSON.stringify(full, null, 2)) }, 'Copy JSON')),
      h('div.msgfull', null, marked(full.message ?? '', this.terms)),
      h('table.fields', null, h('tbody', null, fields.map(([k, v]) => h('tr', null,
        h('th', null, k),
        h('td', null, folded(typeof v === 'object' ? JSON.stringify(v) : String(v), () => this.measure(e.id))),
        h('td.act', null, filterable(k) && typeof v !== 'object'
          ? h('button.icon', { title: `filter ${k}:${v}`, 'aria-label': `filter ${k}`, onclick: () => this.opts.onFilter(k, v) }, '+')
          : null))))),
      h('div.rawlbl', null, 'raw'),
      h('pre.raw', null, full.raw !== undefined ? (full.raw ?? '(no raw line stored)') : 'loading…'));
  }

  async toggle(e) {
    // Rendering makes the rows anew: the keyboard's place goes back to the same row.
    const focused = document.activeElement?.closest?.('.row')?.dataset.id === e.id;
    const refocus = () => {
      const lost = !document.activeElement || document.activeElement === document.body;
      if (focused && lost) this.rows.querySelector(`.row[data-id="${CSS.escape(e.id)}"]`)?.focus({ preventScroll: true });
    };
    if (this.open.has(e.id)) {
      this.open.delete(e.id);
      this.extra.delete(e.id);
      this.render(true);
      refocus();
      if (this.wrap) this.measure(e.id);
      return;
    }
    this.open.add(e.id);
    this.render(true);
    refocus();
    this.measure(e.id);
    if (!this.details.has(e.id)) {
      try {
        const full = await this.opts.expand(e);
        this.details.set(e.id, { ...full, raw: full.raw ?? null });
        if (this.details.size > 200) this.details.delete(this.details.keys().next().value);
      } catch (err) {
        this.details.set(e.id, { ...e, raw: `(cannot load: ${err.message})` });
      }
      if (this.open.has(e.id)) { this.render(true); refocus(); this.measure(e.id); }
    }
  }

  measure(id) {
    const el = this.rows.querySelector(`.entry[data-id="${CSS.escape(id)}"]`);
    if (!el) return;
    const px = Math.max(0, el.offsetHeight - this.rowH);
    if (px) this.extra.set(id, px); else this.extra.delete(id);
    this.bottom.style.height = this.heightOf(this.rendered[1], this.entries.length) + 'px';
    this.top.style.height = this.heightOf(0, this.rendered[0]) + 'px';
  }
}

const TOKEN = /[\p{L}\p{N}_]/u;

/** The text of a field of an entry for its column ('' when it has none). */
function columnValue(e, field) {
  const v = e.fields?.[field] ?? e.metadata?.[field] ?? (field === 'source' ? e.source : undefined);
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
const FOLD = 300; // characters of a field value shown before "show all"

/** A message on one line: its line breaks shown as ⏎ (the row cuts it at its width). */
function oneLine(text) {
  return text.includes('\n') ? text.replace(/\r?\n/g, ' ⏎ ') : text;
}

/** A wrapped message, cut after WRAP_CHARS characters (the expanded entry shows it all). */
function clip(text) {
  return text.length > WRAP_CHARS ? text.slice(0, WRAP_CHARS) + ' …' : text;
}

/** A long field value, folded after FOLD characters behind a "show all" button (which
 *  calls onGrow once the whole value shows). */
function folded(text, onGrow) {
  if (text.length <= FOLD) return text;
  const rest = h('span', { hidden: true }, text.slice(FOLD));
  const btn = h('button.link.showall', { type: 'button', onclick: (ev) => { ev.stopPropagation(); rest.hidden = false; btn.remove(); onGrow?.(); } },
    `… show all ${text.length.toLocaleString('en')} characters`);
  return [text.slice(0, FOLD), rest, ' ', btn];
}

/** Text with the query's words and phrases in <mark>, where they stand as whole tokens
 *  (as the search matches them: `error` in `an error:`, not in `errors`). */
export function marked(text, terms) {
  if (!terms.length || !text) return text;
  const ranges = [];
  const lower = text.toLowerCase();
  for (const { text: t, anyCase } of terms) {
    const hay = anyCase ? lower : text, needle = anyCase ? t.toLowerCase() : t;
    for (let at = hay.indexOf(needle); at >= 0 && ranges.length < 200; at = hay.indexOf(needle, at + 1)) {
      const end = at + needle.length;
      const glued = (TOKEN.test(needle[0]) && at > 0 && TOKEN.test(text[at - 1])) || (TOKEN.test(needle[needle.length - 1]) && end < text.length && TOKEN.test(text[end]));
      if (!glued) ranges.push([at, end]);
    }
  }
  if (!ranges.length) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  const out = [];
  let pos = 0;
  for (const [a, b] of ranges) {
    if (b <= pos) continue;
    const from = Math.max(a, pos);
    if (from > pos) out.push(text.slice(pos, from));
    out.push(h('mark', null, text.slice(from, b)));
    pos = b;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

/** The time of a row; on narrow screens the year hides, the month and day stay. */
function timeEl(ts) {
  const text = fmtTime(ts);
  return h('time.ts', { datetime: ts, title: `${ts} (shown in ${zoneLabel(Date.parse(ts))})` }, h('span.y', null, text.slice(0, 5)), h('span.d', null, text.slice(5, 11)), text.slice(11));
}

/** The lines around an entry, in a dialog. */
export function contextDialog(anchor, logs, onOpen) {
  const dlg = h('dialog.ctx', { 'aria-label': 'context' },
    h('div.dlghead', null,
      h('strong', null, 'Context'),
      h('span.muted', null, ` ${anchor.source || ''} · ${logs.length} lines around ${fmtTime(anchor.timestamp)}`),
      h('button.icon.close', { onclick: () => dlg.close(), 'aria-label': 'close' }, '✕')),
    h('div.ctxlines', null, logs.map((e) =>
      h('div.ctxline' + (e.id === anchor.id ? '.anchor' : ''), { dataset: { id: e.id } },
        timeEl(e.timestamp),
        h('span.lvl.' + levelClass(e.level), null, e.level || '—'),
        h('span.msg', null, e.raw ?? e.message)))),
    onOpen ? h('div.dlgfoot', null, h('button', { onclick: () => { dlg.close(); onOpen(); } }, 'Search this source around this time')) : null);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  dlg.querySelector('.anchor')?.scrollIntoView({ block: 'center' });
  return dlg;
}
