// Sources: every collector with its state. A 404 means no collector is configured on
// this server (only the HTTP ingest endpoints, which are always on).

import { h, mount, emptyState, fmtCount } from './dom.js';
import { getJSON } from './api.js';
import { fmtTime } from './time.js';

export async function show(root) {
  const box = h('div.pbody', null, h('div.muted.small', null, 'Loading…'));
  mount(root, h('div.dash', null, h('div.toolbar', null, h('h1', null, 'Sources')), h('div.grid', null, h('section.panel.wide#p-sources', null, box))));
  let res;
  try {
    res = await getJSON('/api/sources');
  } catch (e) {
    mount(box, e.status === 404
      ? emptyState('Sources are not configured', 'This server only receives logs over HTTP (POST /api/logs, /_bulk, Loki push, OTLP). Add [[sources]] (files, syslog, docker, ssh) to the configuration file to collect more; their state will show here.', 'big')
      : emptyState('Cannot load the sources', e.message));
    return;
  }
  const list = Array.isArray(res) ? res : res.sources || Object.values(res).find(Array.isArray) || [];
  if (!list.length) return mount(box, emptyState('No sources', 'No collector is running.', 'big'));
  // Files (file sources) and containers (Docker sources) are listed under their source.
  const lists = ['files', 'containers'];
  const cols = [...new Set(list.flatMap((s) => Object.keys(s)))].filter((c) => !lists.includes(c));
  mount(box, h('div.tablewrap', null, h('table.data', null,
    h('thead', null, h('tr', null, cols.map((c) => h('th', null, c.replace(/_/g, ' '))))),
    h('tbody', null, list.map((s) => [
      h('tr', null, cols.map((c) => h('td' + (typeof s[c] === 'number' ? '.num' : ''), null, value(c, s[c])))),
      lists.map((l) => Array.isArray(s[l]) && s[l].length ? h('tr.sub', null, h('td', { colspan: cols.length },
        h('ul.files', null, s[l].map((f) => h('li', null, typeof f === 'object' ? Object.entries(f).map(([k, v]) => `${k}: ${value(k, v)}`).join(' · ') : String(f)))))) : null),
    ])))));
}

function value(k, v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return /rate|per_s/.test(k) ? v.toFixed(1) : /offset|bytes|size/.test(k) ? String(v) : fmtCount(v);
  if (typeof v === 'string' && /time|seen|_at$/.test(k) && !isNaN(Date.parse(v))) return fmtTime(v).slice(0, 19);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
