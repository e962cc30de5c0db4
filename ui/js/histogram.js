// The volume histogram: bars stacked by level, drawn as SVG. Click a bar or drag across
// bars to zoom the time range to them.

import { h, svg, fmtCount, LEVELS, levelClass } from './dom.js';
import { fmtTime, stepMs } from './time.js';

const STACK = ['UNKNOWN', 'TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];

/**
 * Draws the histogram of an /api/histogram answer into el. onZoom(start, end) receives ISO
 * times when the user picks a bar or a span of bars.
 */
export function drawHistogram(el, answer, onZoom, opts = {}) {
  const { height = 96 } = opts;
  el._histogram = [answer, onZoom, opts];
  const buckets = answer.buckets || [];
  const cs = getComputedStyle(el);
  const inner = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const width = Math.max(inner || 600, 200);
  const padL = 40, padB = 18, padT = 6;
  const plotW = width - padL - 4, plotH = height - padB - padT;
  const step = stepMs(answer.step);
  const totals = buckets.map((b) => Object.values(b.counts || {}).reduce((a, n) => a + n, 0));
  const max = niceMax(Math.max(1, ...totals));
  const bw = plotW / Math.max(1, buckets.length);
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'histo', role: 'img',
    'aria-label': `log volume, ${buckets.length} bars of ${answer.step}` });
  // Grid and y axis.
  for (const f of max >= 2 ? [0, 0.5, 1] : [0, 1]) {
    const y = padT + plotH - f * plotH;
    root.append(svg('line', { x1: padL, x2: width - 4, y1: y, y2: y, class: 'grid' }));
    root.append(svg('text', { x: padL - 6, y: y + 3, class: 'axis', 'text-anchor': 'end' }, fmtCount(Math.round(max * f))));
  }
  const bars = svg('g');
  buckets.forEach((b, i) => {
    const g = svg('g', { class: 'bar', 'data-i': i });
    let y = padT + plotH;
    for (const lv of STACK) {
      const n = b.counts?.[lv];
      if (!n) continue;
      const hgt = (n / max) * plotH;
      y -= hgt;
      g.append(svg('rect', { x: padL + i * bw + (bw > 3 ? 0.5 : 0), y, width: Math.max(bw - (bw > 3 ? 1 : 0), 0.5), height: hgt, class: levelClass(lv) }));
    }
    g.append(svg('rect', { x: padL + i * bw, y: padT, width: bw, height: plotH, class: 'hit' }));
    const parts = STACK.filter((lv) => b.counts?.[lv]).reverse().map((lv) => `${lv} ${b.counts[lv]}`);
    g.append(svg('title', null, `${fmtTime(b.t)}  ${totals[i]} entries${parts.length ? '\n' + parts.join('\n') : ''}`));
    bars.append(g);
  });
  root.append(bars);
  // X labels: about one per 110 px, as precise as the span needs.
  const every = Math.max(1, Math.ceil(110 / bw));
  const label = axisLabels(buckets, step);
  for (let i = 0; i < buckets.length; i += every) {
    const text = label(buckets[i].t, i === 0);
    if (padL + i * bw + text.length * 5.6 > width) break; // the axis font's width, about
    root.append(svg('text', { x: padL + i * bw, y: height - 4, class: 'axis' }, text));
  }
  const sel = svg('rect', { class: 'brush', y: padT, height: plotH, width: 0, x: 0, visibility: 'hidden' });
  root.append(sel);

  // Zoom: a click picks one bar, a drag a span of bars.
  let from = null;
  const indexAt = (ev) => {
    const r = root.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (width / r.width) - padL;
    return Math.min(buckets.length - 1, Math.max(0, Math.floor(x / bw)));
  };
  const show = (a, b) => {
    const lo = Math.min(a, b), hi = Math.max(a, b);
    sel.setAttribute('x', padL + lo * bw);
    sel.setAttribute('width', (hi - lo + 1) * bw);
    sel.setAttribute('visibility', 'visible');
  };
  root.addEventListener('pointerdown', (ev) => {
    if (!buckets.length || ev.button !== 0) return;
    from = indexAt(ev);
    root.setPointerCapture(ev.pointerId);
    show(from, from);
  });
  root.addEventListener('pointermove', (ev) => { if (from !== null) show(from, indexAt(ev)); });
  root.addEventListener('pointerup', (ev) => {
    if (from === null) return;
    const to = indexAt(ev);
    const lo = Math.min(from, to), hi = Math.max(from, to);
    from = null;
    const start = new Date(buckets[lo].t);
    const end = new Date(new Date(buckets[hi].t).getTime() + step);
    onZoom(start.toISOString(), end.toISOString());
  });
  root.addEventListener('pointercancel', () => { from = null; sel.setAttribute('visibility', 'hidden'); });
  const legend = h('div.legend', null, LEVELS.filter((lv) => buckets.some((b) => b.counts?.[lv]))
    .map((lv) => h('span', null, h('i.sw.' + levelClass(lv)), lv.toLowerCase())));
  el.replaceChildren(legend, root);
}

/**
 * The axis label of a bucket's time (local): with the year when the buckets reach into two
 * years, without the time of day when a bucket is a day or more, and the time alone when the
 * whole span is within one day (the first label keeps its date).
 */
function axisLabels(buckets, step) {
  if (!buckets.length) return () => '';
  const first = new Date(buckets[0].t), last = new Date(buckets[buckets.length - 1].t);
  const years = first.getFullYear() !== last.getFullYear();
  const days = step >= 86400e3;
  const oneDay = last - first < 86400e3 && first.getDate() === last.getDate();
  return (t, isFirst) => {
    const text = fmtTime(t); // YYYY-MM-DD HH:MM:SS.mmm
    const date = years ? text.slice(0, 10) : text.slice(5, 10);
    const time = text.slice(11, 16);
    if (days) return date;
    if (oneDay && !isFirst) return time;
    return `${date} ${time}`;
  };
}

/** Rounds a maximum up to 1, 2 or 5 times a power of ten (whole halves for the grid). */
function niceMax(n) {
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return Math.max(m * p, n <= 1 ? 1 : 2);
  return n;
}

// Redraws every histogram on the page when the window's width changes.
let resizeTimer = 0;
let lastWidth = window.innerWidth;
window.addEventListener('resize', () => {
  if (window.innerWidth === lastWidth) return;
  lastWidth = window.innerWidth;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const el of document.querySelectorAll('.histwrap')) {
      if (el._histogram) drawHistogram(el, ...el._histogram);
    }
  }, 120);
});
