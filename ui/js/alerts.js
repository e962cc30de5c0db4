// Alerts: the fired alerts and the rules' states. An endpoint that answers 404 means
// alerting is not configured on this server: the view says so instead of failing.

import { h, mount, emptyState, fmtCount } from './dom.js';
import { getJSON } from './api.js';
import { fmtTime } from './time.js';
import { setState } from './state.js';

/** How often the open view asks for new alerts. */
const REFRESH_MS = 3000;

export async function show(root) {
  const alertsBox = h('section.panel.wide#p-alerts', null, h('h2', null, 'Fired alerts'), h('div.pbody', null, h('div.muted.small', null, 'Loading…')));
  const rulesBox = h('section.panel.wide#p-rules', null, h('h2', null, 'Rules'), h('div.pbody', null, h('div.muted.small', null, 'Loading…')));
  mount(root, h('div.dash', null, h('div.toolbar', null, h('h1', null, 'Alerts')), h('div.grid', null, alertsBox, rulesBox)));
  if (!(await render(root, alertsBox, rulesBox))) return;
  // Alerts fire while the view is open: refresh until another view replaces it.
  const timer = setInterval(() => {
    if (!alertsBox.isConnected) return clearInterval(timer);
    if (!document.hidden) render(root, alertsBox, rulesBox);
  }, REFRESH_MS);
}

/** Fills both panels; answers false when alerting is not configured (nothing to refresh). */
async function render(root, alertsBox, rulesBox) {
  const [alerts, rules] = await Promise.allSettled([getJSON('/api/alerts'), getJSON('/api/alerts/rules')]);
  const notConfigured = [alerts, rules].every((r) => r.status === 'rejected' && r.reason.status === 404);
  if (notConfigured) {
    mount(root, h('div.dash', null, h('div.toolbar', null, h('h1', null, 'Alerts')),
      emptyState('Alerting is not configured', 'Alerting is turned off on this server ([alerts] enabled = false). Remove that line from the configuration file and restart logyard serve; fired alerts and rule states will show here.', 'big')));
    return false;
  }
  const body = (p) => p.querySelector('.pbody');
  if (alerts.status === 'rejected') {
    mount(body(alertsBox), alerts.reason.status === 404 ? emptyState('Not available', 'This server does not list fired alerts.', 'small') : emptyState('Cannot load', alerts.reason.message, 'small'));
  } else {
    const list = alerts.value.alerts || [];
    mount(body(alertsBox), list.length ? h('div.tablewrap', null, h('table.data', null,
      h('thead', null, h('tr', null, ['last seen', 'rule', 'kind', 'group', 'count', 'message', 'notified'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((a) => h('tr', null,
        h('td.nowrap', null, a.last_seen ? fmtTime(a.last_seen).slice(0, 19) : '–'),
        h('td', null, h('strong', null, a.rule ?? '')),
        h('td', null, a.kind ?? ''),
        h('td', null, Object.entries(a.group || {}).map(([k, v]) => `${k}=${v}`).join(' ')),
        h('td.num', null, fmtCount(a.count) + (a.suppressed ? ` (+${a.suppressed} suppressed)` : '')),
        h('td.msgcell', null, a.message ?? ''),
        h('td', null, (a.notified || []).map((n) => h('span.tag' + (n.ok ? '.ok' : '.bad'), { title: n.error || '' }, n.notifier))))))))
      : emptyState('No alert has fired', 'Every rule is quiet.', 'small'));
  }
  if (rules.status === 'rejected') {
    mount(body(rulesBox), rules.reason.status === 404 ? emptyState('Not available', 'This server does not list its rules.', 'small') : emptyState('Cannot load', rules.reason.message, 'small'));
  } else {
    const list = rules.value.rules || [];
    const now = Date.now();
    mount(body(rulesBox), list.length ? h('div.tablewrap', null, h('table.data', null,
      h('thead', null, h('tr', null, ['rule', 'kind', 'query', 'state', 'last fired'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((r) => {
        const cooling = r.cooldown_until && new Date(r.cooldown_until).getTime() > now;
        return h('tr', null,
          h('td', null, h('strong', null, r.name ?? '')),
          h('td', null, r.kind ?? ''),
          h('td', null, r.query ? h('button.link.mono', { onclick: () => setState({ view: 'explore', q: r.query }) }, r.query) : ''),
          h('td', null, h('span.tag' + (cooling ? '.bad' : '.ok'), null, cooling ? 'cooling down until ' + fmtTime(r.cooldown_until).slice(11, 19) : 'armed')),
          h('td.nowrap', null, r.last_fired ? fmtTime(r.last_fired).slice(0, 19) : 'never'));
      }))))
      : emptyState('No rules', 'No alert rule is configured.', 'small'));
  }
  return true;
}
