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

// The zone every time is shown and typed in: the browser's (`local`) or `utc`, remembered
// in the browser.
const ZONE_KEY = 'logyard.zone';
let zone = (() => { try { return localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local'; } catch { return 'local'; } })();

/** The zone times are shown in: `local` or `utc`. */
export function timeZone() { return zone; }

/** Chooses the zone of every time shown; remembered, and announced as `logyard:zone`. */
export function setTimeZone(z) {
  zone = z === 'utc' ? 'utc' : 'local';
  try { localStorage.setItem(ZONE_KEY, zone); } catch { /* not remembered */ }
  dispatchEvent(new Event('logyard:zone'));
}

/** The zone's name as shown: `UTC`, or the local offset (`UTC+01:00`). */
export function zoneLabel(at = Date.now()) {
  if (zone === 'utc') return 'UTC';
  const off = -new Date(at).getTimezoneOffset();
  return `UTC${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** The parts of a time in the chosen zone. */
function parts(d) {
  return zone === 'utc'
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
}

/** A time in the chosen zone, with milliseconds: 2024-01-15 10:30:00.123. */
export function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  if (isNaN(d)) return String(t);
  const [y, mo, da, hr, mi, se, ms] = parts(d);
  return `${y}-${pad(mo)}-${pad(da)} ${pad(hr)}:${pad(mi)}:${pad(se)}.${pad(ms, 3)}`;
}

/** A time in the chosen zone without seconds: 01-15 10:30. */
export function fmtShort(t) {
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  const [, mo, da, hr, mi] = parts(d);
  return `${pad(mo)}-${pad(da)} ${pad(hr)}:${pad(mi)}`;
}

/** The text of a range input for an ISO time: 2024-01-15 10:30:00 in the chosen zone. */
export function toInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? '' : fmtTime(d).slice(0, 19);
}

/**
 * Reads a time typed in a range input: `now`, `now-2h` (s, m, h, d, w), an ISO time with a
 * zone (`2024-01-15T10:30:00Z`, `…+02:00`), or a date and time without one (`2024-01-15
 * 10:30`, seconds and milliseconds optional, `T` or a space), taken in the chosen zone.
 * Returns milliseconds since the epoch, or NaN.
 */
export function parseInput(text, now = Date.now()) {
  const t = text.trim();
  const rel = /^now(?:\s*-\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w))?$/i.exec(t);
  if (rel) return now - (rel[1] ? Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[rel[2].toLowerCase()] : 0);
  if (/(Z|[+-]\d\d:?\d\d)$/i.test(t) && /^\d{4}-\d\d-\d\d[T ]/.test(t)) return Date.parse(t.replace(' ', 'T'));
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?)?$/.exec(t);
  if (!m) return NaN;
  const [y, mo, da, hr = 0, mi = 0, se = 0] = m.slice(1, 7).map((x) => Number(x || 0));
  const ms = m[7] ? Number(m[7].padEnd(3, '0')) : 0;
  if (mo < 1 || mo > 12 || da < 1 || da > 31 || hr > 23 || mi > 59 || se > 59) return NaN;
  return zone === 'utc' ? Date.UTC(y, mo - 1, da, hr, mi, se, ms) : new Date(y, mo - 1, da, hr, mi, se, ms).getTime();
}

/** Parses a step such as 5m or 1h into milliseconds. */
export function stepMs(step) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(step || '');
  if (!m) return 0;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2]];
  return Number(m[1]) * unit;
}
