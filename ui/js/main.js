// The entry point: routes the URL's state to a view and binds the keyboard.

import { readState, onState, setState, emit } from './state.js';
import { showExplorer, leaveExplorer, rerun } from './explorer.js';
import { whoami, signIn, showIdentity } from './session.js';
import { keepSavedOnServer } from './saved.js';
import { timeZone, setTimeZone, zoneLabel } from './time.js';
import { h } from './dom.js';

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

// One zone for every time on the page: the browser's or UTC, remembered.
const zoneBtn = h('button#zone.zone', { type: 'button', title: 'times are shown and typed in this zone; click for the other' });
const zoneText = () => {
  if (timeZone() === 'utc') zoneBtn.replaceChildren('UTC');
  else zoneBtn.replaceChildren('Local', h('span.hide-narrow', null, ` (${zoneLabel()})`));
};
zoneText();
zoneBtn.addEventListener('click', () => setTimeZone(timeZone() === 'utc' ? 'local' : 'utc'));
document.querySelector('header.top').append(zoneBtn);
addEventListener('logyard:zone', () => {
  zoneText();
  if (current === 'explore') rerun(); else emit();
});

// A server with tokens: sign in first (the cookie then goes with every request).
let me = await whoami();
if (!me) me = await signIn(app);
showIdentity(me);
keepSavedOnServer(!!me.auth);
// A session that ends (signed out elsewhere, its token removed) shows the sign-in again.
addEventListener('logyard:unauthorized', () => location.reload());
onState(show);
emit();
window.__logyard = { readState };
