// Signing in and out: a server with tokens answers 401 until the browser signs in with one
// (POST /api/session sets an HttpOnly cookie); what the token may not read is hidden.

import { h } from './dom.js';

let csrf = null;

/** The signed-in session's CSRF token, for the requests that change something. */
export function csrfToken() { return csrf; }

/** Who the browser is: {auth, name, role, scope} or null when it must sign in. */
export async function whoami() {
  const res = await fetch('/api/session', { headers: { accept: 'application/json' } });
  if (res.status === 401) return null;
  const me = await res.json();
  csrf = me.csrf || null;
  return me;
}

/** Shows the sign-in form in `app`; resolves once a token signed in. */
export function signIn(app) {
  document.body.dataset.signedOut = '';
  return new Promise((done) => {
    const token = h('input#token', { type: 'password', autocomplete: 'current-password', required: true, placeholder: 'token', 'aria-label': 'token' });
    const error = h('p.err#signin-error', { role: 'alert' });
    const form = h('form.signin#signin', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        error.textContent = '';
        const res = await fetch('/api/session', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ token: token.value }),
        });
        const body = await res.json().catch(() => null);
        if (!res.ok) {
          error.textContent = body?.error?.message || `${res.status} ${res.statusText}`;
          token.select();
          return;
        }
        csrf = body.csrf;
        delete document.body.dataset.signedOut;
        done(body);
      },
    },
    h('h1', null, 'Sign in'),
    h('p', null, 'This server needs a token. Ask its administrator for one (', h('code', null, 'logyard token new'), ').'),
    token,
    h('button', { type: 'submit' }, 'Sign in'),
    error);
    app.replaceChildren(form);
    token.focus();
  });
}

/** Shows who is signed in, with a sign-out button, and hides the views the token may not use. */
export function showIdentity(me) {
  const nav = document.getElementById('nav');
  // A scoped token reads only through its scope: alerts and sources cover every agent.
  const hidden = me.role === 'ingest' ? ['explore', 'dashboard', 'alerts', 'sources']
    : me.scope ? ['alerts', 'sources'] : [];
  for (const a of nav.querySelectorAll('a[data-view]')) a.hidden = hidden.includes(a.dataset.view);
  if (!me.auth) return;
  const who = h('span.who#who', { title: me.scope ? `reads only ${me.scope}` : me.role },
    `${me.name} · ${me.role}${me.scope ? ' · ' + me.scope : ''}`);
  const out = h('button.signout#signout', {
    type: 'button',
    onclick: async () => {
      await fetch('/api/session', { method: 'DELETE', headers: { 'x-csrf-token': csrf || '' } });
      location.reload();
    },
  }, 'Sign out');
  document.querySelector('header.top').append(h('div.identity', null, who, out));
}
