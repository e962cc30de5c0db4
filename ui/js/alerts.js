// Alerts: the fired alerts and the rules' states. An endpoint that answers 404 means
// alerting is not configured on this server: the view says so instead of failing.

import { h, mount, emptyState, fmtCount } from './dom.js';
import { getJSON, postJSON } from './api.js';
import { fmtTime } from './time.js';
import { setState } from './state.js';
import { addFilter } from './query.js';

/** How often the open view asks for new alerts. */
const REFRESH_MS = 3000;
/** Fired alerts per page. */
const PAGE = 25;
/** The filters and page of the fired alerts, kept across refreshes. */
const view = { rule: '', failedOnly: false, page: 0 };

/** What became of an alert's notifications, in words. */
function notificationState(a) {
  const n = a.notified || [];
  if (a.silenced) return { text: 'silenced', cls: '', title: 'fired while its rule was silenced: not sent' };
  if (!n.length) return { text: 'pending', cls: '', title: 'the notifications are being sent' };
  const failed = n.filter((x) => !x.ok);
  if (!failed.length) return { text: 'sent to ' + n.map((x) => x.notifier).join(', '), cls: '.ok', title: n.map((x) => `${x.notifier}: ${x.attempts} attempt(s)`).join('\n') };
  return {
    text: 'failed: ' + failed.map((x) => x.notifier).join(', '),
    cls: '.bad',
    title: failed.map((x) => `${x.notifier}: ${x.error || 'failed'}`).join('\n'),
    reason: failed.map((x) => x.error).filter(Boolean).join('; '),
  };
}

/** The explorer's state showing the entries behind an alert: its rule's query and group,
 *  over the time from its first to its last entry. */
function entriesOf(a, rules) {
  const rule = rules.find((r) => r.name === a.rule);
  let q = rule?.query || '*';
  for (const [k, v] of Object.entries(a.group || {})) {
    if (k !== 'pattern' && v !== null && v !== undefined && v !== '') q = addFilter(q, k, v);
  }
  const from = Date.parse(a.first_seen || a.fired_at), to = Date.parse(a.last_seen || a.fired_at);
  return { view: 'explore', q, from: isNaN(from) ? '' : new Date(from).toISOString(), to: isNaN(to) ? '' : new Date(to + 1000).toISOString(), range: '' };
}

/** The fired alerts: filters (rule, failed notifications), pages, newest fired first. */
function drawAlerts(box, all, rules) {
  const names = [...new Set(all.map((a) => a.rule))].sort();
  if (view.rule && !names.includes(view.rule)) view.rule = '';
  const shown = all
    .filter((a) => (!view.rule || a.rule === view.rule) && (!view.failedOnly || (a.notified || []).some((n) => !n.ok)))
    .sort((a, b) => Date.parse(b.fired_at || b.last_seen) - Date.parse(a.fired_at || a.last_seen));
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  view.page = Math.min(view.page, pages - 1);
  const page = shown.slice(view.page * PAGE, (view.page + 1) * PAGE);
  const redraw = () => drawAlerts(box, all, rules);
  const ruleSel = h('select#alert-rule', { 'aria-label': 'rule' }, h('option', { value: '' }, 'Every rule'), names.map((n) => h('option', { value: n }, n)));
  ruleSel.value = view.rule;
  ruleSel.addEventListener('change', () => { view.rule = ruleSel.value; view.page = 0; redraw(); });
  const failed = h('input#alert-failed', { type: 'checkbox' });
  failed.checked = view.failedOnly;
  failed.addEventListener('change', () => { view.failedOnly = failed.checked; view.page = 0; redraw(); });
  const filters = h('div.alertfilters', null, ruleSel, h('label', null, failed, ' notification failed'),
    h('span.muted.small', null, `${shown.length} of ${all.length}`),
    pages > 1 ? h('span.pager', null,
      h('button#alerts-prev', { type: 'button', disabled: view.page === 0, onclick: () => { view.page--; redraw(); } }, '‹ Newer'),
      h('span.muted.small', null, ` page ${view.page + 1} of ${pages} `),
      h('button#alerts-next', { type: 'button', disabled: view.page >= pages - 1, onclick: () => { view.page++; redraw(); } }, 'Older ›')) : null);
  if (!all.length) { mount(box, emptyState('No alert has fired', 'Every rule is quiet.', 'small')); return; }
  mount(box, filters, shown.length ? h('div.tablewrap', null, h('table.data', null,
    h('thead', null, h('tr', null, ['fired', 'severity', 'rule', 'group', 'count', 'message', 'notification', ''].map((c) => h(c === 'count' ? 'th.num' : 'th', null, c)))),
    h('tbody', null, page.map((a) => {
      const st = notificationState(a);
      return h('tr', { dataset: { id: a.id } },
        h('td.nowrap', { title: `first entry ${fmtTime(a.first_seen)}, last ${fmtTime(a.last_seen)}` }, fmtTime(a.fired_at || a.last_seen).slice(0, 19)),
        h('td', null, h('span.tag.sev-' + (a.severity || 'warning'), null, a.severity || '')),
        h('td', null, h('strong', null, a.rule ?? ''), h('div.muted.small', null, a.kind ?? '')),
        h('td', null, Object.entries(a.group || {}).map(([k, v]) => `${k}=${v}`).join(' ')),
        h('td.num', null, fmtCount(a.count) + (a.suppressed ? ` (+${a.suppressed} suppressed)` : '')),
        h('td.msgcell', null, a.message ?? ''),
        h('td', null, h('span.tag.notif' + st.cls, { title: st.title }, st.text), st.reason ? h('div.muted.small', null, st.reason) : null),
        h('td', null, h('button.link.entries', { type: 'button', onclick: () => setState(entriesOf(a, rules)) }, 'Entries')));
    }))))
    : emptyState('No alert matches', 'Change the filters above.', 'small'));
}

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
  const [alerts, rules] = await Promise.allSettled([getJSON('/api/alerts', { limit: 1000 }), getJSON('/api/alerts/rules')]);
  const notConfigured = [alerts, rules].every((r) => r.status === 'rejected' && r.reason.status === 404);
  if (notConfigured) {
    mount(root, h('div.dash', null, h('div.toolbar', null, h('h1', null, 'Alerts')),
      emptyState('Alerting is not configured', 'Alerting is turned off on this server ([alerts] enabled = false). Remove that line from the configuration file and restart logyard serve; fired alerts and rule states will show here.', 'big')));
    return false;
  }
  const body = (p) => p.querySelector('.pbody');
  const ruleList = rules.status === 'fulfilled' ? rules.value.rules || [] : [];
  if (alerts.status === 'rejected') {
    mount(body(alertsBox), alerts.reason.status === 404 ? emptyState('Not available', 'This server does not list fired alerts.', 'small') : emptyState('Cannot load', alerts.reason.message, 'small'));
  } else {
    drawAlerts(body(alertsBox), alerts.value.alerts || [], ruleList);
  }
  if (rules.status === 'rejected') {
    mount(body(rulesBox), rules.reason.status === 404 ? emptyState('Not available', 'This server does not list its rules.', 'small') : emptyState('Cannot load', rules.reason.message, 'small'));
  } else {
    const list = rules.value.rules || [];
    const now = Date.now();
    mount(body(rulesBox), list.length ? h('div.tablewrap', null, h('table.data', null,
      h('thead', null, h('tr', null, ['rule', 'kind', 'query', 'state', 'last fired', 'silence'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((r) => {
        const cooling = r.cooldown_until && new Date(r.cooldown_until).getTime() > now;
        const silenced = r.silenced_until && new Date(r.silenced_until).getTime() > now;
        const act = async (dur) => {
          try { await postJSON(`/api/alerts/rules/${encodeURIComponent(r.name)}/silence`, { for: dur }); } catch (e) { alert(`Cannot change the silence of ${r.name}: ${e.message}`); }
          render(root, alertsBox, rulesBox);
        };
        const pick = h('select.silence', { 'aria-label': `silence ${r.name}` }, h('option', { value: '' }, 'Silence…'),
          [['1h', '1 hour'], ['4h', '4 hours'], ['24h', '1 day'], ['7d', '1 week']].map(([v, t]) => h('option', { value: v }, t)));
        pick.addEventListener('change', () => { if (pick.value) act(pick.value); });
        return h('tr', { dataset: { rule: r.name } },
          h('td', null, h('strong', null, r.name ?? '')),
          h('td', null, r.kind ?? ''),
          h('td', null, r.query ? h('button.link.mono', { onclick: () => setState({ view: 'explore', q: r.query }) }, r.query) : ''),
          h('td', null, h('span.tag' + (cooling ? '.bad' : '.ok'), null, cooling ? 'cooling down until ' + fmtTime(r.cooldown_until).slice(11, 19) : 'armed')),
          h('td.nowrap', null, r.last_fired ? fmtTime(r.last_fired).slice(0, 19) : 'never'),
          h('td.nowrap', null, silenced
            ? [h('span.tag', { title: 'what it fires is kept in the history, not sent' }, 'silenced until ' + fmtTime(r.silenced_until).slice(5, 16)), h('button.link.unsilence', { type: 'button', onclick: () => act('0s') }, 'Lift')]
            : pick));
      }))))
      : emptyState('No rules', 'No alert rule is configured.', 'small'));
  }
  return true;
}
