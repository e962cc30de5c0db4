// The dashboard: volume and error rate per agent, top error patterns, slow requests,
// failed logins and suspicious IPs, the store's size and ingest rate. Every panel is one
// query over the chosen range and loads on its own.

import { h, mount, emptyState, fmtCount, fmtBytes } from './dom.js';
import { getJSON, query, rowsOf } from './api.js';
import { setState } from './state.js';
import { rangeOf, rangeLabel, RELATIVE, fmtTime } from './time.js';
import { addFilter, quoteValue } from './query.js';
import { drawHistogram } from './histogram.js';
import { barList, table } from './charts.js';

// Phrases are case-sensitive: the usual spellings of a failed login, capitalised or not.
const FAILED_LOGINS = ['login failed', 'authentication failed', 'failed login', 'invalid password']
  .flatMap((p) => [p, p[0].toUpperCase() + p.slice(1)]).map((p) => `"${p}"`).join(' OR ');

export function show(root, s) {
  const range = rangeOf(s);
  const rangeSel = h('select#range', { 'aria-label': 'time range' },
    RELATIVE.map(([k]) => h('option', { value: k }, 'Last ' + k)), h('option', { value: 'all' }, 'All time'),
    (s.from || s.to) ? h('option', { value: 'custom' }, rangeLabel(s)) : null);
  rangeSel.value = (s.from || s.to) ? 'custom' : (s.range || 'all');
  rangeSel.addEventListener('change', () => { if (rangeSel.value !== 'custom') setState({ range: rangeSel.value }); });
  const panel = (id, title, wide) => h('section.panel' + (wide ? '.wide' : ''), { id }, h('h2', null, title), h('div.pbody', null, h('div.muted.small', null, 'Loading…')));
  const panels = {
    stats: panel('p-stats', 'Store', true),
    volume: panel('p-volume', 'Volume over time', true),
    agents: panel('p-agents', 'Volume and error rate by agent'),
    patterns: panel('p-patterns', 'Top error patterns'),
    slow: panel('p-slow', 'Slow requests'),
    p95: panel('p-p95', 'Response time by agent'),
    logins: panel('p-logins', 'Failed logins'),
    ips: panel('p-ips', 'Suspicious IPs'),
    critical: panel('p-critical', 'Critical issues', true),
  };
  mount(root, h('div.dash', null,
    h('div.toolbar', null, h('h1', null, 'Dashboard'), h('span.muted', null, rangeLabel(s)), h('div.grow'), rangeSel),
    h('div.grid', null, Object.values(panels))));
  const body = (p) => p.querySelector('.pbody');
  const fail = (p, e) => mount(body(p), emptyState('Cannot load', e.message, 'small'));
  const go = (q) => () => setState({ view: 'explore', q });

  getJSON('/api/stats', { start_time: range.start, end_time: range.end }).then((st) => {
    mount(body(panels.stats), h('div.kpis', null,
      kpi('Entries', fmtCount(st.total)),
      kpi('Errors', fmtCount((st.by_level?.ERROR || 0) + (st.by_level?.CRITICAL || 0))),
      kpi('Agents', fmtCount(Object.keys(st.by_agent || {}).length)),
      kpi('Stored', fmtBytes(st.bytes_stored)),
      kpi('Ingest rate', `${fmtCount(Math.round((st.ingest_rate_per_s || 0) * 10) / 10)}/s`),
      kpi('Newest', st.newest ? fmtTime(st.newest).slice(0, 19) : '–')));
  }).catch((e) => fail(panels.stats, e));

  getJSON('/api/histogram', { q: '*', start: range.start, end: range.end }).then((res) => {
    const el = body(panels.volume);
    el.replaceChildren();
    el.classList.add('histwrap');
    drawHistogram(el, res, (from, to) => setState({ from, to, range: '' }), { height: 120 });
  }).catch((e) => fail(panels.volume, e));

  getJSON('/api/agents', { start_time: range.start, end_time: range.end }).then((res) => {
    const rows = (res.agents || []).map((a) => ({ agent: a.name, n: a.count, last: a.last_seen,
      err: (a.levels?.ERROR || 0) + (a.levels?.CRITICAL || 0) })).sort((a, b) => b.n - a.n).slice(0, 15);
    if (!rows.length) return mount(body(panels.agents), emptyState('No entries', 'Nothing in this range.', 'small'));
    const max = Math.max(...rows.map((r) => r.n));
    mount(body(panels.agents), h('div.tablewrap', null, h('table.data.agents', null,
      h('thead', null, h('tr', null, h('th', null, 'agent'), h('th', null, 'entries'), h('th', null, 'errors'), h('th', null, 'error rate'), h('th.hide-narrow', null, 'last seen'))),
      h('tbody', null, rows.map((r) => {
        const rate = r.n ? r.err / r.n : 0;
        return h('tr.click', { onclick: go(addFilter('', 'agent', r.agent ?? '')), title: 'explore this agent' },
          h('td', null, r.agent || '(none)'),
          h('td.num', null, h('span.inbar', { style: `--w:${(r.n / max) * 100}%` }, fmtCount(r.n))),
          h('td.num', null, fmtCount(r.err)),
          h('td.num' + (rate >= 0.1 ? '.hot' : rate >= 0.02 ? '.warm' : ''), null, (rate * 100).toFixed(1) + '%'),
          h('td.nowrap.muted.hide-narrow', null, r.last ? fmtTime(r.last).slice(5, 19) : ''));
      })))));
  }).catch((e) => fail(panels.agents, e));

  const hours = range.start ? Math.max(1, Math.ceil((Date.now() - Date.parse(range.start)) / 3600e3)) : 24 * 7;
  getJSON('/api/errors/summary', { hours }).then((res) => {
    const crit = res.critical_issues || [];
    mount(body(panels.critical), crit.length
      ? h('div', null, h('p.muted.small', null, `${fmtCount(res.total_error_entries)} error entries from ${res.agents_with_errors} of ${res.total_agents} agents in the last ${res.analysis_period_hours} h; the newest critical ones:`),
        table(['time', 'agent', 'message'], crit.slice(0, 10).map((e) => [fmtTime(e.timestamp).slice(5, 19), e.agent ?? '', e.message])))
      : emptyState('No critical entry', `Nothing at CRITICAL in the last ${res.analysis_period_hours} h.`, 'small'));
  }).catch((e) => fail(panels.critical, e));

  query('level:>=ERROR | patterns | limit 10', range).then((t) => {
    const rows = rowsOf(t);
    if (!rows.length) return mount(body(panels.patterns), emptyState('No errors', 'No entry at ERROR or above in this range.', 'small'));
    mount(body(panels.patterns), barList(rows.map((r) => ({ label: r.pattern, value: r.count, title: 'example: ' + r.example, cls: 'lv-error' }))));
  }).catch((e) => fail(panels.patterns, e));

  query('response_time_ms:* | sort by (response_time_ms) desc | limit 20', range, { limit: 20 }).then((res) => {
    const logs = (res.logs || []).filter((l) => l.fields?.response_time_ms !== undefined);
    if (!logs.length) return mount(body(panels.slow), emptyState('No timed requests', 'No entry has a response_time_ms field in this range.', 'small'));
    mount(body(panels.slow), table(['time', 'agent', 'ms', 'message'], logs.map((l) => [fmtTime(l.timestamp).slice(5, 19), l.agent ?? '', Number(l.fields.response_time_ms), l.message])));
  }).catch((e) => fail(panels.slow, e));

  query('* | stats count(response_time_ms) as n, p50(response_time_ms) as p50, p95(response_time_ms) as p95, max(response_time_ms) as max by (agent) | sort by (p95) desc', range).then((t) => {
    const rows = rowsOf(t).filter((r) => r.n > 0);
    if (!rows.length) return mount(body(panels.p95), emptyState('No timed requests', 'No entry has a response_time_ms field in this range.', 'small'));
    mount(body(panels.p95), barList(rows.slice(0, 12).map((r) => ({ label: `${r.agent ?? '(none)'} · p50 ${fmtCount(r.p50)}`, value: r.p95, title: `p95 ${r.p95} ms, max ${r.max} ms over ${r.n} requests`, cls: 'fill' })), { fmt: (v) => fmtCount(v) + ' ms' }));
  }).catch((e) => fail(panels.p95, e));

  Promise.all([
    query(`${FAILED_LOGINS} | stats count() by (agent)`, range).then(rowsOf),
    query(`${FAILED_LOGINS} | top 10 ip`, range).then(rowsOf),
  ]).then(([byAgent, ips]) => {
    const total = byAgent.reduce((a, r) => a + r['count()'], 0);
    mount(body(panels.logins), total
      ? h('div', null, h('div.kpis', null, kpi('Failed logins', fmtCount(total))),
        barList(byAgent.sort((a, b) => b['count()'] - a['count()']).map((r) => ({ label: r.agent ?? '(none)', value: r['count()'], cls: 'lv-warning', onclick: go(`(${FAILED_LOGINS}) ${addFilter('', 'agent', r.agent ?? '')}`) }))))
      : emptyState('No failed logins', 'No "login failed" or "authentication failed" message in this range.', 'small'));
    const known = ips.filter((r) => r.ip !== null && r.ip !== undefined);
    mount(body(panels.ips), known.length
      ? barList(known.map((r) => ({ label: String(r.ip), value: r.count, cls: 'lv-error', onclick: go(`(${FAILED_LOGINS}) ip:${quoteValue(r.ip)}`) })))
      : emptyState('No suspicious IPs', 'Failed logins carry no ip field in this range.', 'small'));
  }).catch((e) => { fail(panels.logins, e); fail(panels.ips, e); });
}

function kpi(label, value) {
  return h('div.kpi', null, h('div.kv', null, value), h('div.kl', null, label));
}
