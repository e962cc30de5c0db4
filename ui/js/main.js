// The entry point: routes the URL's state to a view and binds the keyboard.

import { readState, onState, setState, emit } from './state.js';
import { showExplorer, leaveExplorer } from './explorer.js';
import { whoami, signIn, showIdentity } from './session.js';

const app = document.getElementById('app');
let current = null;

async function show(s) {
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('on', a.dataset.view === s.view);
    if (a.dataset.view === s.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `logyard · ${s.view}${s.q ? ' · ' + s.q : ''}`;
  if (s.view !== 'explore' && current === 'explore') leaveExplorer();
  current = s.view;
  document.body.dataset.view = s.view;
  if (s.view === 'explore') return showExplorer(app, s);
  const mod = await import(`./${s.view}.js`);
  if (current !== s.view) return;
  mod.show(app, s);
}

// Nav links keep the query and range: a view is another look at the same data.
document.getElementById('nav').addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-view]');
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
  ev.preventDefault();
  setState({ view: a.dataset.view });
});

document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || t.isContentEditable;
  if (ev.key === '/' && !typing && !ev.ctrlKey && !ev.metaKey) {
    const q = document.getElementById('q');
    if (q) { ev.preventDefault(); q.focus(); q.select(); }
    else { ev.preventDefault(); setState({ view: 'explore' }); requestAnimationFrame(() => document.getElementById('q')?.focus()); }
  }
});

// A server with tokens: sign in first (the cookie then goes with every request).
let me = await whoami();
if (!me) me = await signIn(app);
showIdentity(me);
// A session that ends (signed out elsewhere, its token removed) shows the sign-in again.
addEventListener('logyard:unauthorized', () => location.reload());
onState(show);
emit();
window.__logyard = { readState };
