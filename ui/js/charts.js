// Small SVG charts and tables for the dashboard.

import { h, svg, fmtCount } from './dom.js';

/** Horizontal bars: rows of {label, value, title?, onclick?}. */
export function barList(rows, { fmt = fmtCount, cls = '' } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value || 0));
  return h('div.barlist', null, rows.map((r) =>
    h('div.barrow' + (r.onclick ? '.click' : ''), { title: r.title || r.label, onclick: r.onclick, role: r.onclick ? 'button' : null, tabindex: r.onclick ? '0' : null },
      h('span.lbl', null, r.label),
      h('span.track', null, svgBar((r.value || 0) / max, r.cls || cls)),
      h('span.num', null, fmt(r.value)))));
}

function svgBar(f, cls) {
  return svg('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', class: 'minibar' },
    svg('rect', { x: 0, y: 0, width: Math.max(f * 100, f > 0 ? 1 : 0), height: 10, class: cls || 'fill' }));
}

/** A table of rows (arrays) under column names. */
export function table(columns, rows, { fmt } = {}) {
  return h('div.tablewrap', null, h('table.data', null,
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c, i) =>
      h('td' + (typeof c === 'number' ? '.num' : ''), null, fmt ? fmt(c, columns[i]) : cell(c))))))));
}

function cell(c) {
  if (c === null || c === undefined) return '–';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : c.toFixed(2);
  if (typeof c === 'object') return JSON.stringify(c);
  return String(c);
}
