// The page's state lives in the URL: view, query, time range, order, live tail and auto-refresh. A link
// reproduces what its author saw; the back button walks through searches.

const DEFAULTS = { view: 'explore', q: '', range: 'all', from: '', to: '', tail: '', refresh: '', order: '' };
export const VIEWS = ['explore', 'dashboard', 'alerts', 'sources'];

/** Reads the state from the location. */
export function readState() {
  const p = new URLSearchParams(location.search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) if (p.has(k)) s[k] = p.get(k);
  if (!VIEWS.includes(s.view)) s.view = 'explore';
  if (s.from || s.to) s.range = '';
  return s;
}

/** The URL of a state, leaving defaults out. */
export function urlOf(s) {
  const p = new URLSearchParams();
  for (const [k, d] of Object.entries(DEFAULTS)) {
    if (s[k] !== undefined && s[k] !== d && s[k] !== null) p.set(k, s[k]);
  }
  if (s.from || s.to) p.delete('range');
  const qs = p.toString();
  return location.pathname + (qs ? '?' + qs : '');
}

let listeners = [];
/** Calls fn(state) whenever the state changes. */
export function onState(fn) { listeners.push(fn); }

/** Changes the state: pushes a history entry (or replaces it) and notifies. */
export function setState(patch, { replace = false } = {}) {
  const next = { ...readState(), ...patch };
  if (patch.range) { next.from = ''; next.to = ''; }
  const url = urlOf(next);
  if (url === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  emit();
}

export function emit() {
  const s = readState();
  for (const fn of listeners) fn(s);
}

window.addEventListener('popstate', emit);
