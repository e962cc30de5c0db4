// Saved queries: on the server, each token its own (`/api/saved-queries`), once the browser
// is signed in; in this browser's storage on a server without tokens.

import { getJSON, sendJSON } from './api.js';

const KEY = 'logyard.saved';
let onServer = false;

/** Keeps saved queries on the server (a signed-in token) or in this browser. */
export function keepSavedOnServer(on) { onServer = on; }

function local() {
  try { const v = JSON.parse(localStorage.getItem(KEY) || '[]'); return Array.isArray(v) ? v : []; } catch { return []; }
}
function keepLocal(list) {
  try { localStorage.setItem(KEY, JSON.stringify(list)); } catch { /* not kept */ }
}

/** The saved queries, by name: [{name, q, range}]. */
export async function listSaved() {
  if (!onServer) return local().sort((a, b) => a.name.localeCompare(b.name));
  const res = await getJSON('/api/saved-queries');
  return res.queries.map((s) => ({ name: s.name, q: s.query, range: s.range || '' }));
}

/** Saves a query under a name (replacing one of that name), with its time range if any. */
export async function saveQuery(name, q, range) {
  if (!onServer) { keepLocal([{ name, q, range }, ...local().filter((s) => s.name !== name)]); return; }
  await sendJSON('PUT', '/api/saved-queries/' + encodeURIComponent(name), range ? { query: q, range } : { query: q });
}

/** Forgets a saved query. */
export async function deleteSaved(name) {
  if (!onServer) { keepLocal(local().filter((s) => s.name !== name)); return; }
  await sendJSON('DELETE', '/api/saved-queries/' + encodeURIComponent(name));
}
