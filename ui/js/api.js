// Calls to the HTTP API. Every failure is an ApiError carrying the API's code, message and,
// for a query syntax error, the byte position in the query.

export class ApiError extends Error {
  constructor(status, code, message, position) {
    super(message);
    this.status = status;
    this.code = code;
    this.position = position;
  }
}

/** GETs a JSON endpoint; params with empty values are left out. */
export async function getJSON(path, params = {}, { signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  let res;
  try {
    res = await fetch(url, { signal, headers: { accept: 'application/json' } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401) dispatchEvent(new Event('logyard:unauthorized'));
  if (!res.ok) {
    const err = body && body.error;
    throw new ApiError(res.status, err?.code || 'http_' + res.status,
      err?.message || `${res.status} ${res.statusText}`, err?.position);
  }
  return body;
}

/** Sends JSON to an endpoint that changes something (with the session's CSRF token). */
export async function sendJSON(method, path, body) {
  const { csrfToken } = await import('./session.js');
  let res;
  try {
    res = await fetch(path, { method, headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrfToken() || '' }, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  let answer = null;
  try { answer = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const err = answer && answer.error;
    throw new ApiError(res.status, err?.code || 'http_' + res.status, err?.message || `${res.status} ${res.statusText}`);
  }
  return answer;
}

/** POSTs JSON to an endpoint that changes something. */
export function postJSON(path, body) { return sendJSON('POST', path, body); }

/** Runs a query-language query over a range. */
export function query(q, range, extra = {}, opts) {
  return getJSON('/api/query', { q, start: range.start, end: range.end, ...extra }, opts);
}

/** Turns a table answer into objects keyed by column. */
export function rowsOf(table) {
  if (!table || !table.columns) return [];
  return table.rows.map((r) => Object.fromEntries(table.columns.map((c, i) => [c, r[i]])));
}
