// Time ranges and time formatting.

export const RELATIVE = [
  ['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3], ['7d', 7 * 86400e3],
];

/**
 * The concrete range of a state, as API parameters. A relative range is fixed to absolute
 * times at the moment of the call, so the list, histogram and facets agree.
 */
export function rangeOf(s, now = Date.now()) {
  if (s.from || s.to) return { start: s.from || undefined, end: s.to || undefined };
  const rel = RELATIVE.find(([k]) => k === s.range);
  if (rel) return { start: new Date(now - rel[1]).toISOString(), end: new Date(now).toISOString() };
  return { start: undefined, end: undefined };
}

/** A label for the state's range. */
export function rangeLabel(s) {
  if (s.from || s.to) return `${s.from ? fmtShort(s.from) : '…'} → ${s.to ? fmtShort(s.to) : 'now'}`;
  if (!s.range || s.range === 'all') return 'All time';
  return 'Last ' + s.range;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local time with milliseconds: 2024-01-15 10:30:00.123. */
export function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  if (isNaN(d)) return String(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Local time without seconds. */
export function fmtShort(t) {
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The value of an <input type=datetime-local> for an ISO time. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Parses a step such as 5m or 1h into milliseconds. */
export function stepMs(step) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(step || '');
  if (!m) return 0;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2]];
  return Number(m[1]) * unit;
}
