// End-to-end tests of the web UI: starts the real `logyard serve` on a temporary data
// directory, ingests entries over several agents, levels and times, and drives Debian's
// Chromium in headless mode through every view. Screenshots go to target/e2e-screenshots/.
//
//   node tests/e2e/run.mjs [path/to/logyard]     (default: $LOGYARD_BIN, else target/debug/logyard)
//
// Every scenario runs on one screen in one theme: E2E_SCREEN=desktop (1440x900, the default)
// or phone (390x844), E2E_SCHEME=light (the default) or dark; tests/ui_e2e.rs runs all four.
// On the phone, every scenario also checks that the page is no wider than the screen.
//
// Exits non-zero when a check fails. Runs in well under a minute.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const bin = process.argv[2] || process.env.LOGYARD_BIN || join(process.env.CARGO_TARGET_DIR || join(repo, 'target'), 'debug/logyard');
const shots = join(repo, 'target/e2e-screenshots');
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREEN = process.env.E2E_SCREEN === 'phone' ? 'phone' : 'desktop';
const SCHEME = process.env.E2E_SCHEME === 'dark' ? 'dark' : 'light';
const phone = SCREEN === 'phone';
const VIEWPORT = phone ? { width: 390, height: 844 } : { width: 1440, height: 900 };
// Screenshots of the default run keep their plain names; the others say where they come from.
const variant = SCREEN === 'desktop' && SCHEME === 'light' ? '' : `-${SCREEN}-${SCHEME}`;
mkdirSync(shots, { recursive: true });
// A failure's screenshot from an earlier run would mislead.
for (const f of readdirSync(shots)) if (f.startsWith('FAILED-') && f.endsWith(`${variant || '-desktop-light'}.png`)) rmSync(join(shots, f));

const started = Date.now();
const deadline = setTimeout(async () => {
  console.error('e2e: over 90 s, giving up');
  await browser?.close().catch(() => {});
  await cleanup();
  process.exit(1);
}, 90_000);

// --- the server ----------------------------------------------------------------------
const data = mkdtempSync(join(tmpdir(), 'logyard-e2e-'));
const profile = mkdtempSync(join(tmpdir(), 'logyard-e2e-chromium-'));
// The store keeps everything: some entries are from the turn of last year.
const config1 = join(data, 'logyard.toml');
writeFileSync(config1, '[store]\nretention_days = 0\n');
const server = spawn(bin, ['--config', config1, 'serve', '--data', join(data, 'data'), '--listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOGYARD_LOG: 'warn' },
});
let serverErr = '';
server.stderr.on('data', (d) => { serverErr += d; });
const base = await new Promise((ok, fail) => {
  const rl = createInterface({ input: server.stdout });
  rl.on('line', (line) => { const m = /^listening on (\S+)/.exec(line); if (m) ok(m[1]); });
  server.on('exit', (code) => fail(new Error(`logyard serve exited (${code}): ${serverErr}`)));
});
let browser = null;
// Stops the server and waits for it (its last flush writes into the data directory)
// before the temporary directories are removed.
async function cleanup() {
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((ok) => server.once('exit', ok));
    try { server.kill('SIGTERM'); } catch { /* gone */ }
    await Promise.race([exited, new Promise((ok) => setTimeout(ok, 10_000))]);
  }
  for (const dir of [data, profile]) {
    try { rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch { /* left in the temp dir */ }
  }
}

async function ingest(entries) {
  const res = await fetch(base + '/api/logs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(entries) });
  const body = await res.json();
  assert.equal(body.rejected, 0, JSON.stringify(body.errors));
  return body;
}

// --- the data: 2 500 entries over the last 6 hours, and a few marked ones -------------
const AGENTS = ['web-app', 'api-gateway', 'billing', 'auth-service', 'worker'];
const HOSTS = ['prod-1', 'prod-2', 'prod-3'];
const now = Date.now();
const iso = (t) => new Date(t).toISOString();
const entries = [];
let seed = 7;
// mulberry32: a small seeded generator, so every run ingests the same entries.
const rnd = (n) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (((t ^ (t >>> 14)) >>> 0) % n);
};
for (let i = 0; i < 2500; i++) {
  const t = now - 6 * 3600e3 + i * (6 * 3600e3 / 2500);
  const agent = AGENTS[rnd(AGENTS.length)];
  const r = rnd(100);
  const level = r < 3 ? 'CRITICAL' : r < 12 ? 'ERROR' : r < 25 ? 'WARNING' : r < 85 ? 'INFO' : 'DEBUG';
  const e = { timestamp: iso(t), level, agent, host: HOSTS[rnd(3)], source: `file:/var/log/${agent}.log` };
  if (agent === 'auth-service' && r < 20) {
    e.message = `login failed for user u${rnd(9)} from 10.0.0.${rnd(4)}`;
    e.ip = `10.0.0.${rnd(4)}`;
    e.level = 'WARNING';
  } else if (level === 'ERROR' || level === 'CRITICAL') {
    e.message = rnd(2) ? `connection to 10.1.2.${rnd(9)}:5432 refused after ${rnd(900)}ms` : `payment ${rnd(99999)} failed: card declined`;
  } else {
    e.message = `GET /api/items/${rnd(5000)} 200 in ${rnd(400)}ms`;
    e.response_time_ms = rnd(400) + (rnd(50) === 0 ? 3000 : 0);
    e.status = 200;
  }
  entries.push(e);
}
// The needle, in a source of its own with five lines on each side (for the context).
const needleAt = now - 2 * 3600e3;
for (let i = -5; i <= 5; i++) {
  entries.push({
    timestamp: iso(needleAt + i * 1000), level: i === 0 ? 'ERROR' : 'INFO', agent: 'checkout', host: 'prod-9',
    source: 'file:/var/log/checkout.log',
    message: i === 0 ? 'NEEDLE-checkout-7731 order failed' : `checkout step ${i + 5}`,
    raw: i === 0 ? '2026-01-01 ERROR [checkout] NEEDLE-checkout-7731 order failed order_id=7731' : undefined,
    order_id: i === 0 ? 7731 : undefined,
  });
}
// Two days ago, so that "all time" spans more than the recent hours.
for (let i = 0; i < 20; i++) {
  entries.push({ timestamp: iso(now - 48 * 3600e3 + i * 60e3), level: 'INFO', agent: 'worker', host: 'prod-1', message: `nightly batch step ${i}` });
}
// The newest of all.
entries.push({ timestamp: iso(now - 1000), level: 'WARNING', agent: 'web-app', host: 'prod-1', message: 'the newest entry of all' });
await ingest(entries);
const TOTAL = entries.length;

// --- the browser ---------------------------------------------------------------------
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: VIEWPORT,
  colorScheme: SCHEME,
});
browser = context;
const page = context.pages()[0] || await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error' && !/404|Failed to load resource/.test(m.text())) pageErrors.push(m.text()); });
page.setDefaultTimeout(8000);

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    if (phone) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone's screen`);
    }
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.stack || e}`);
    await page.screenshot({ path: join(shots, `FAILED-${name.replace(/\W+/g, '-')}${variant || '-desktop-light'}.png`) }).catch(() => {});
  }
}
const shot = (name) => page.screenshot({ path: join(shots, name + variant + '.png') });
// On the phone, the facets are a drawer opened by its button.
const openFacets = async () => {
  if (!phone) return;
  if (!(await page.locator('.facets.shown').count())) await page.locator('.facet-toggle').click();
  await page.locator('.facets.shown').waitFor();
  await page.waitForTimeout(200); // its slide
};
// The texts of an element of every row, shown or not (the phone's rows hide agent and host).
const rowTexts = (what) => page.locator(`.list .row ${what}`).allTextContents();
const rows = () => page.locator('.list .row');
const domRows = () => page.locator('.list .row').count();
const param = (k) => new URL(page.url()).searchParams.get(k);
const waitIdle = () => page.waitForFunction(() => !document.querySelector('.explore.busy'));

await test('serves the page with its modules', async () => {
  const res = await page.goto(base + '/');
  assert.equal(res.status(), 200, `GET / answers 200: is ${bin} a build with the UI?`);
  assert.match(res.headers()['content-type'], /text\/html/);
  assert.ok(res.headers()['etag']);
  const js = await fetch(base + '/ui/js/main.js');
  assert.match(js.headers.get('content-type'), /javascript/);
  const again = await fetch(base + '/ui/js/main.js', { headers: { 'if-none-match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  const api404 = await fetch(base + '/api/nope');
  assert.equal(api404.status, 404);
  assert.equal((await api404.json()).error.code, 'not_found');
});

await test('explorer shows the newest entries of all time, tail off', async () => {
  const t0 = Date.now();
  await page.goto(base + '/');
  await page.locator('.list .row').first().waitFor();
  const firstRows = Date.now() - t0;
  console.log(`     first rows on screen ${firstRows} ms after navigation`);
  assert.ok(firstRows < 5000, `first rows took ${firstRows} ms`);
  await waitIdle();
  assert.match(await rows().first().locator('.msg').innerText(), /the newest entry of all/);
  assert.equal(await page.locator('#tail').getAttribute('aria-pressed'), 'false');
  assert.equal(await page.locator('#range').inputValue(), 'all');
  await page.locator('.histo .bar').first().waitFor();
  await page.locator('.facet[data-field=agent] .fv').first().waitFor();
  await page.locator('.facet[data-field=level] .fv').first().waitFor();
  assert.match(await page.locator('.summary').innerText(), new RegExp(`^${TOTAL} entries`));
  const agents = await page.locator('.facet[data-field=agent] .fl').allInnerTexts();
  for (const a of AGENTS) assert.ok(agents.includes(a), `facet lists ${a}: ${agents}`);
  await shot('explorer');
});

await test('infinite scroll keeps a bounded number of rows in the DOM', async () => {
  const list = page.locator('.list');
  let max = 0;
  for (let i = 0; i < 14; i++) {
    await list.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForTimeout(120);
    max = Math.max(max, await domRows());
  }
  await page.waitForFunction(() => !/Loading/.test(document.querySelector('.list .foot').textContent));
  const loaded = await list.evaluate((el) => el.scrollHeight / 28);
  assert.ok(loaded > 900, `scrolling loaded more pages (height for ${loaded} rows)`);
  assert.ok(max <= 160, `at most 160 rows in the DOM, saw ${max}`);
  await list.evaluate((el) => { el.scrollTop = 0; });
  await page.waitForTimeout(100);
  assert.match(await rows().first().locator('.msg').innerText(), /the newest entry of all/);
});

await test('search finds an entry; expand shows fields and raw line', async () => {
  await page.locator('#q').fill('NEEDLE-checkout-7731');
  await page.locator('#q').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.list .row').length === 1);
  assert.equal(param('q'), 'NEEDLE-checkout-7731');
  await rows().first().click();
  await page.locator('.detail pre.raw', { hasText: 'order_id=7731' }).waitFor();
  const fields = await page.locator('.detail table.fields').innerText();
  assert.match(fields, /agent\s+checkout/);
  assert.match(fields, /order_id\s+7731/);
  await shot('explorer-expanded');
});

await test('context shows the lines around the entry', async () => {
  await page.getByRole('button', { name: 'Show context' }).click();
  const dlg = page.locator('dialog.ctx[open]');
  await dlg.waitFor();
  assert.equal(await dlg.locator('.ctxline').count(), 11);
  assert.match(await dlg.locator('.ctxline.anchor').innerText(), /NEEDLE-checkout-7731/);
  const texts = await dlg.locator('.ctxline .msg').allInnerTexts();
  assert.equal(texts[0], 'checkout step 0');
  assert.equal(texts[10], 'checkout step 10');
  await shot('context');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

await test('a facet click adds its filter', async () => {
  await page.goto(base + '/?range=24h');
  await page.locator('.facet[data-field=agent] .fv', { hasText: 'billing' }).waitFor();
  await openFacets();
  await page.locator('.facet[data-field=agent] .fv', { hasText: 'billing' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'agent:billing');
  await waitIdle();
  const agents = await rowTexts('.agent');
  assert.ok(agents.length > 0 && agents.every((a) => a === 'billing'), agents.join());
  assert.equal(param('range'), '24h');
});

await test('histogram: drag across bars and click a bar zoom the range', async () => {
  await page.goto(base + '/?range=24h');
  await page.locator('.histo .bar').first().waitFor();
  await waitIdle();
  const before = await page.locator('.summary').innerText();
  const box = await page.locator('.histo').boundingBox();
  // The data covers the last 6 of 24 hours: drag across the right third.
  await page.mouse.move(box.x + box.width * 0.80, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.90, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => new URLSearchParams(location.search).has('from'));
  const from = new Date(param('from')), to = new Date(param('to'));
  assert.ok(to > from);
  assert.ok(to - from < 6 * 3600e3, `zoomed to ${from.toISOString()}..${to.toISOString()}`);
  assert.equal(await page.locator('#range').inputValue(), 'custom');
  await waitIdle();
  const after = await page.locator('.summary').innerText();
  assert.notEqual(after, before);
  for (const t of await page.locator('.list .row time').evaluateAll((els) => els.slice(0, 20).map((e) => e.getAttribute('datetime')))) {
    const d = new Date(t);
    assert.ok(d >= from && d < to, `${t} within the zoomed range`);
  }
  await shot('histogram-zoomed');
  // One click on one bar zooms to that bar.
  await page.locator('.histo .bar').first().waitFor();
  const b2 = await page.locator('.histo').boundingBox();
  const prevFrom = param('from');
  await page.mouse.click(b2.x + b2.width * 0.5, b2.y + b2.height / 2);
  await page.waitForFunction((f) => new URLSearchParams(location.search).get('from') !== f, prevFrom);
  assert.ok(new Date(param('to')) - new Date(param('from')) < to - from);
});

await test('state in the URL is restored; back returns to the previous search', async () => {
  await page.goto(base + '/?q=level%3AERROR&range=7d');
  await waitIdle();
  await rows().first().waitFor();
  assert.equal(await page.locator('#q').inputValue(), 'level:ERROR');
  assert.equal(await page.locator('#range').inputValue(), '7d');
  const levels = await rowTexts('.lvl');
  assert.ok(levels.length > 10 && levels.every((l) => l === 'ERROR'), levels.join());
  await page.locator('#q').fill('agent:worker');
  await page.locator('#q').press('Enter');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'agent:worker');
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#q').value === 'level:ERROR');
  await waitIdle();
  assert.ok((await rowTexts('.lvl')).every((l) => l === 'ERROR'));
});

await test('a syntax error is shown at its position', async () => {
  const q = 'level:ERROR | stats count(';
  await page.locator('#q').fill(q);
  await page.locator('#q').press('Enter');
  const err = page.locator('.qerror');
  await err.waitFor({ state: 'visible' });
  const api = await (await fetch(`${base}/api/query?q=${encodeURIComponent(q)}`)).json();
  assert.equal(api.error.code, 'query_syntax');
  const text = await err.innerText();
  assert.match(text, new RegExp(`position ${api.error.position}`));
  const caret = (await err.locator('pre.where').innerText()).split('\n')[1];
  assert.equal(caret.indexOf('^'), api.error.position);
  assert.equal(await page.locator('#q').evaluate((el) => el.classList.contains('bad')), true);
  await shot('syntax-error');
});

await test('a table query shows a table', async () => {
  await page.goto(base + '/?q=' + encodeURIComponent('level:ERROR | stats count() by (agent)'));
  const tbl = page.locator('.tablebox table.data');
  await tbl.waitFor();
  assert.deepEqual(await tbl.locator('th').allInnerTexts(), ['agent', 'count()']);
  assert.ok(await tbl.locator('tbody tr').count() >= 5);
  assert.equal(await page.locator('.list').isVisible(), false);
  // Numbers right-aligned; a click on a heading sorts by it, again the other way.
  const countTh = tbl.locator('th', { hasText: 'count()' });
  assert.equal(await countTh.evaluate((el) => getComputedStyle(el).textAlign), 'right');
  const counts = async () => (await tbl.locator('tbody td.num').allInnerTexts()).map(Number);
  await countTh.click();
  let c = await counts();
  assert.deepEqual(c, [...c].sort((a, b) => b - a), `descending: ${c}`);
  await countTh.click();
  c = await counts();
  assert.deepEqual(c, [...c].sort((a, b) => a - b), `ascending: ${c}`);
  // A bar per group; a row opens the entries of its group.
  assert.ok(await page.locator('.resulttable .barrow').count() >= 5);
  await shot('explorer-table');
  await tbl.locator('tbody tr', { hasText: 'billing' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'level:ERROR agent:billing');
  await waitIdle();
  const agents = await rowTexts('.agent');
  assert.ok(agents.length > 0 && agents.every((a) => a === 'billing'), agents.join());
});

await test('a histogram answer is drawn as a chart above its table', async () => {
  await page.goto(base + '/?q=' + encodeURIComponent('* | histogram 1h by level') + '&range=24h');
  await page.locator('.tablebox table.data').waitFor();
  const bars = page.locator('.tablebox .pipechart .bar');
  await bars.first().waitFor();
  assert.ok(await bars.count() >= 6, `${await bars.count()} bars`);
  assert.ok(await page.locator('.tablebox .pipechart rect.lv-error').count() > 0, 'stacked by level');
});

await test('keyboard: / focuses the search, Esc clears it', async () => {
  await page.goto(base + '/?q=agent%3Abilling');
  await waitIdle();
  await page.locator('.list').click({ position: { x: 5, y: 5 } }).catch(() => {});
  await page.keyboard.press('Escape');
  await page.locator('body').focus();
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'q');
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#q').inputValue(), '');
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('q'));
  await waitIdle();
  // Rows take the keyboard: ↓ moves to the next, Enter expands.
  await rows().first().focus();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.locator('.entry.open .detail').waitFor();
  assert.equal(await page.locator('.entry.open').getAttribute('data-id'), await page.locator('.list .entry').nth(1).getAttribute('data-id'));
  // The expanded entry keeps the focus: Enter collapses it, ↓ goes on to the next.
  const second = await page.locator('.list .entry').nth(1).getAttribute('data-id');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset?.id), second, 'focus stays on the expanded row');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !document.querySelector('.entry.open'));
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.locator('.entry.open .detail').waitFor();
  assert.equal(await page.locator('.entry.open').getAttribute('data-id'), await page.locator('.list .entry').nth(2).getAttribute('data-id'));
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('q'));
});

await test('refresh runs the same search again and shows what came since', async () => {
  await page.goto(base + '/?q=agent%3Arefresher&range=15m');
  await waitIdle();
  assert.equal(await domRows(), 0);
  await ingest([{ agent: 'refresher', message: 'first since the page opened' }]);
  // Enter on the unchanged query sends the search again.
  let asked = page.waitForRequest((r) => r.url().includes('/api/query') && r.url().includes('refresher'));
  await page.locator('#q').press('Enter');
  await asked;
  await page.locator('.list .row', { hasText: 'first since the page opened' }).waitFor();
  // So does the Refresh button.
  await ingest([{ agent: 'refresher', message: 'second since the page opened' }]);
  asked = page.waitForRequest((r) => r.url().includes('/api/query') && r.url().includes('refresher'));
  await page.locator('#refresh').click();
  await asked;
  await page.locator('.list .row', { hasText: 'second since the page opened' }).waitFor();
  assert.equal(param('q'), 'agent:refresher');
  // Auto-refresh: kept in the URL, and the new entry comes by itself.
  await page.locator('#every').selectOption('5s');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('refresh') === '5s');
  await ingest([{ agent: 'refresher', message: 'third, found by auto-refresh' }]);
  await page.locator('.list .row', { hasText: 'third, found by auto-refresh' }).waitFor({ timeout: 8000 });
  await page.locator('#every').selectOption('');
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('refresh'));
});

await test('live tail streams new entries, pauses and resumes', async () => {
  await page.goto(base + '/?q=agent%3Atailer');
  await waitIdle();
  await page.locator('#tail').click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('tail') === '1');
  assert.equal(await page.locator('#tail').getAttribute('aria-pressed'), 'true');
  // Give the EventSource a moment to connect, then ingest.
  await page.waitForTimeout(400);
  const line = (i) => ({ level: i % 2 ? 'ERROR' : 'INFO', agent: 'tailer', host: 'prod-1', message: `tail line ${i}` });
  await ingest([line(1), line(2), { agent: 'other', message: 'tail line not matching' }]);
  await page.locator('.list .row', { hasText: 'tail line 2' }).waitFor();
  await ingest([line(3)]);
  await page.locator('.list .row', { hasText: 'tail line 3' }).waitFor();
  const msgs = await page.locator('.list .row .msg').allInnerTexts();
  assert.deepEqual(msgs, ['tail line 3', 'tail line 2', 'tail line 1']);
  // The summary keeps the count of the search, grown by what came live.
  await page.waitForFunction(() => /^3 entries · Live · 3 new/.test(document.querySelector('.summary').textContent));
  await page.locator('#pause').click();
  await ingest([line(4), line(5)]);
  await page.waitForFunction(() => /Resume \(2 new\)/.test(document.querySelector('#pause').textContent));
  assert.equal(await domRows(), 3);
  await shot('live-tail-paused');
  await page.locator('#pause').click();
  await page.locator('.list .row', { hasText: 'tail line 5' }).waitFor();
  assert.equal(await domRows(), 5);
  await shot('live-tail');
  await page.locator('#tail').click();
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('tail'));
});

await test('dashboard shows volume, errors, patterns, slow requests, failed logins', async () => {
  await page.goto(base + '/?view=dashboard&range=24h');
  await page.locator('#p-agents tbody tr').first().waitFor();
  await page.locator('#p-patterns .barrow').first().waitFor();
  await page.locator('#p-slow tbody tr').first().waitFor();
  await page.locator('#p-p95 .barrow').first().waitFor();
  await page.locator('#p-ips .barrow').first().waitFor();
  await page.locator('#p-stats .kpi').first().waitFor();
  await page.locator('#p-volume .histo').waitFor();
  assert.match(await page.locator('#p-patterns').innerText(), /connection to <ip> refused after <num>ms|payment <num> failed: card declined/);
  assert.match(await page.locator('#p-ips').innerText(), /10\.0\.0\.\d/);
  const slow = await page.locator('#p-slow tbody tr td.num').first().innerText();
  assert.ok(Number(slow) >= 3000, `slowest first: ${slow}`);
  await page.locator('#p-critical :is(table, .empty)').first().waitFor();
  await page.setViewportSize({ width: VIEWPORT.width, height: 1500 });
  await page.waitForTimeout(200);
  await shot('dashboard');
  await page.setViewportSize(VIEWPORT);
});

await test('alerts and sources say when they are not configured', async () => {
  for (const view of ['alerts', 'sources']) {
    const res = await fetch(`${base}/api/${view}`);
    await page.goto(`${base}/?view=${view}`);
    if (res.status === 404) {
      await page.locator('.empty', { hasText: 'not configured' }).waitFor();
    } else {
      await page.locator('.panel .pbody :is(table, .empty)').first().waitFor();
    }
    await shot(view);
  }
});

await test('an alert fires while the alerts view is open', async () => {
  await page.goto(base + '/?view=alerts');
  await page.locator('#p-alerts .pbody :is(table, .empty)').first().waitFor();
  const message = `e2e ledger replica lost ${Date.now()}`;
  assert.ok(!(await page.locator('#p-alerts').innerText()).includes(message));
  await ingest([{ timestamp: iso(Date.now()), level: 'CRITICAL', agent: 'ledger', host: 'prod-9', message }]);
  // No reload: the view refreshes itself.
  const row = page.locator('#p-alerts tbody tr', { hasText: message });
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.innerText(), /critical[\s\S]*immediate/);
  await page.locator('#p-rules tbody tr', { hasText: 'cooling down until' }).first().waitFor({ timeout: 15_000 });
  await shot('alert-fired');
  // Silence the rule for a while from its row, then lift it.
  const rule = page.locator('#p-rules tbody tr[data-rule=critical]');
  await rule.locator('select.silence').selectOption('4h');
  await rule.locator('.tag', { hasText: 'silenced until' }).waitFor();
  const rules = await (await fetch(base + '/api/alerts/rules')).json();
  const until = Date.parse(rules.rules.find((r) => r.name === 'critical').silenced_until);
  assert.ok(Math.abs(until - (Date.now() + 4 * 3600e3)) < 60e3, `silenced for 4 h: ${new Date(until).toISOString()}`);
  await shot('alert-rule-silenced');
  await rule.locator('button.unsilence').click();
  await rule.locator('select.silence').waitFor();
});

await test('alerts and sources render what their endpoints answer', async () => {
  // These endpoints may not exist on this server yet: answer them from the test.
  const t = iso(now - 60e3);
  const json = (body) => (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  // 30 of one rule (the newest with a failed notification), and one still being sent.
  const fired = (i) => iso(now - 60e3 - i * 60e3);
  const many = Array.from({ length: 30 }, (_, i) => ({ id: 100 - i, rule: 'many-errors', kind: 'threshold', severity: 'warning', group: { agent: 'billing' },
    count: 12, suppressed: 3, first_seen: fired(i + 1), last_seen: fired(i), fired_at: fired(i), message: i ? `payment ${i} failed` : 'payment 4411 failed: card declined',
    notified: i ? [{ notifier: 'slack', ok: true, attempts: 1, error: null }] : [{ notifier: 'slack', ok: true, attempts: 1, error: null }, { notifier: 'webhook', ok: false, attempts: 3, error: 'timed out' }] }));
  const pending = { id: 1, rule: 'disk', kind: 'absence', severity: 'critical', group: {}, count: 0, suppressed: 0, first_seen: t, last_seen: t, fired_at: iso(now - 90 * 60e3), message: 'no backup for 1h', notified: [] };
  await page.route(/\/api\/alerts(\?.*)?$/, json({ alerts: [...many, pending] }));
  await page.route('**/api/alerts/rules', json({ rules: [{ name: 'many-errors', kind: 'threshold', query: 'level:>=ERROR agent:billing', cooldown_until: iso(now + 600e3), last_fired: t },
    { name: 'disk', kind: 'absence', query: 'agent:backup', cooldown_until: null, last_fired: null }] }));
  await page.route('**/api/sources', json({ sources: [{ name: 'app-logs', kind: 'file', state: 'running', lines_per_s: 12.5, last_line_time: t, errors: 0,
    files: [{ path: '/var/log/app.log', offset: 123456 }] }, { name: 'syslog', kind: 'syslog:udp', state: 'running', lines_per_s: 3, last_line_time: t, errors: 2 }] }));
  await page.goto(base + '/?view=alerts');
  await page.locator('#p-alerts tbody tr', { hasText: 'many-errors' }).first().waitFor();
  const alertRows = page.locator('#p-alerts tbody tr');
  const first = alertRows.first();
  assert.match(await first.innerText(), /warning[\s\S]*many-errors[\s\S]*billing[\s\S]*12 \(\+3 suppressed\)[\s\S]*failed: webhook[\s\S]*timed out/);
  // Newest fired first, 25 a page.
  assert.equal(await alertRows.count(), 25);
  assert.match(await page.locator('#p-alerts').innerText(), /page 1 of 2/);
  await page.locator('#alerts-next').click();
  assert.equal(await alertRows.count(), 6);
  assert.match(await alertRows.last().innerText(), /critical[\s\S]*disk[\s\S]*pending/);
  // Filters: a rule, and failed notifications only.
  await page.locator('#alert-rule').selectOption('disk');
  assert.equal(await alertRows.count(), 1);
  await page.locator('#alert-rule').selectOption('');
  await page.locator('#alert-failed').check();
  assert.equal(await alertRows.count(), 1);
  assert.match(await alertRows.first().innerText(), /payment 4411/);
  assert.equal(await page.locator('#p-rules tbody tr').count(), 2);
  assert.match(await page.locator('#p-rules').innerText(), /cooling down until[\s\S]*armed/);
  await shot('alerts-configured');
  // An alert's entries: its rule's query and group over the time of its entries.
  await alertRows.first().locator('button.entries').click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'level:>=ERROR agent:billing');
  assert.equal(param('view'), null);
  assert.equal(param('from'), many[0].first_seen);
  assert.equal(param('to'), iso(Date.parse(many[0].last_seen) + 1000));
  await page.goto(base + '/?view=alerts');
  await page.locator('#p-rules button', { hasText: 'level:>=ERROR agent:billing' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'level:>=ERROR agent:billing');
  await page.goto(base + '/?view=sources');
  await page.locator('#p-sources tbody tr', { hasText: 'app-logs' }).waitFor();
  assert.match(await page.locator('#p-sources').innerText(), /\/var\/log\/app\.log/);
  await shot('sources-configured');
  await page.unrouteAll();
});

await test('a word that finds few entries offers the search whatever its case', async () => {
  await ingest([
    { agent: 'casecheck', level: 'ERROR', message: 'Timeout contacting the upstream' },
    { agent: 'casecheck', level: 'ERROR', message: 'TIMEOUT again' },
    { agent: 'casecheck', level: 'ERROR', message: 'a timeout, in lower case' },
  ]);
  await page.goto(base + '/?q=' + encodeURIComponent('timeout agent:casecheck'));
  await waitIdle();
  assert.equal(await domRows(), 1);
  const hint = page.locator('.casehint');
  await hint.waitFor();
  assert.match(await hint.innerText(), /3 entries match whatever the case/);
  // The word is marked where it matches, as a whole token and in its case.
  assert.deepEqual(await page.locator('.list .row .msg mark').allInnerTexts(), ['timeout']);
  await page.locator('#casefix').click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'i(timeout) agent:casecheck');
  await waitIdle();
  assert.equal(await domRows(), 3);
  assert.deepEqual((await page.locator('.list .row .msg mark').allInnerTexts()).sort(), ['TIMEOUT', 'Timeout', 'timeout']);
  assert.ok(await hint.isHidden(), 'no hint once nothing more is found');
  assert.match(await page.locator('#q').getAttribute('title'), /i\(timeout\)/);
});

await test('facets of host and source, include and exclude, and more than the top 20', async () => {
  await ingest(Array.from({ length: 25 }, (_, i) => ({ agent: `fleet-${String(i).padStart(2, '0')}`, host: 'edge-1', message: `fleet member ${i} reporting` })));
  await page.goto(base + '/?q=' + encodeURIComponent('fleet member') + '&range=1h');
  await waitIdle();
  const agentFacet = page.locator('.facet[data-field=agent]');
  await agentFacet.locator('.fv').first().waitFor();
  await openFacets();
  assert.equal(await agentFacet.locator('.fv').count(), 20);
  await agentFacet.locator('button.more', { hasText: '5 more' }).click();
  assert.equal(await agentFacet.locator('.fv').count(), 25);
  assert.match(await page.locator('.facet[data-field=host]').innerText(), /edge-1\s+25/);
  await page.locator('.facet[data-field=source] .fv').first().waitFor();
  // − leaves a value out; the list and the counts follow.
  await agentFacet.locator('.fitem', { hasText: 'fleet-03' }).hover();
  await agentFacet.locator('.fitem', { hasText: 'fleet-03' }).locator('.fx').click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'fleet member -agent:fleet-03');
  await waitIdle();
  await page.waitForFunction(() => /^24 entries/.test(document.querySelector('.summary').textContent));
  const agents = await rowTexts('.agent');
  assert.ok(!agents.includes('fleet-03'), agents.join());
  // + (the value itself) keeps only it.
  await page.locator('.facet[data-field=host] .fv', { hasText: 'edge-1' }).waitFor();
  await openFacets();
  await page.locator('.facet[data-field=host] .fv', { hasText: 'edge-1' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'fleet member -agent:fleet-03 host:edge-1');
});

await test('queries run are suggested again; a query saved under a name comes back from the list', async () => {
  await page.goto(base + '/?q=' + encodeURIComponent('agent:billing level:ERROR'));
  await waitIdle();
  await page.goto(base + '/?q=' + encodeURIComponent('agent:worker'));
  await waitIdle();
  const options = await page.locator('#qhistory option').evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual(options.slice(0, 2), ['agent:worker', 'agent:billing level:ERROR']);
  page.once('dialog', (d) => d.accept('worker errors'));
  await page.goto(base + '/?q=' + encodeURIComponent('agent:worker level:>=ERROR'));
  await waitIdle();
  await page.locator('#save').click();
  await page.waitForFunction(() => [...document.querySelectorAll('#saved option')].some((o) => o.textContent === 'worker errors'));
  await page.goto(base + '/');
  await waitIdle();
  await page.locator('#saved').selectOption({ label: 'worker errors' });
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'agent:worker level:>=ERROR');
});

await test('a facet for any field, added and removed in this browser', async () => {
  await page.goto(base + '/?range=24h');
  await waitIdle();
  await page.locator('#addfacet').waitFor();
  await openFacets();
  await page.locator('#addfacet').fill('status');
  await page.locator('form.addfacet button').click();
  const status = page.locator('.facet[data-field=status]');
  await status.locator('.fv', { hasText: '200' }).waitFor();
  await page.reload();
  await status.locator('.fv', { hasText: '200' }).waitFor();
  await openFacets();
  await status.locator('.fv', { hasText: '200' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'status:200');
  await waitIdle();
  await status.locator('.fv', { hasText: '200' }).waitFor();
  await openFacets();
  await status.locator('.unfacet').click();
  await status.waitFor({ state: 'detached' });
});

await test('a field shown as a column of the list, kept in this browser', async () => {
  await page.goto(base + '/?q=NEEDLE-checkout-7731');
  await waitIdle();
  if (phone) {
    // A phone's row has room for the time, the level and the message only.
    assert.equal(await page.locator('form.addcol').isVisible(), false);
    return;
  }
  await page.locator('#addcol').fill('order_id');
  await page.locator('form.addcol button').click();
  await page.locator('.list .row .col[data-col=order_id]', { hasText: '7731' }).waitFor();
  await page.reload();
  await waitIdle();
  await page.locator('.list .row .col[data-col=order_id]', { hasText: '7731' }).waitFor();
  await page.locator('.coltag .uncol').click();
  await page.locator('.list .row .col').first().waitFor({ state: 'detached' });
});

await test('a long field value is folded behind "show all"', async () => {
  await ingest([{ agent: 'longfield', message: 'a long field', payload: 'x'.repeat(1000) + 'END' }]);
  await page.goto(base + '/?q=agent%3Alongfield');
  await waitIdle();
  await rows().first().click();
  const cell = page.locator('.detail table.fields tr', { hasText: 'payload' }).locator('td').first();
  await cell.locator('button.showall').waitFor();
  assert.ok(!(await cell.innerText()).includes('END'));
  await cell.locator('button.showall').click();
  assert.ok((await cell.innerText()).includes('END'));
});

await test('export downloads every match of the current query and range', async () => {
  await page.goto(base + '/?q=' + encodeURIComponent('agent:checkout') + '&range=24h');
  await waitIdle();
  for (const [format, check] of [['csv', (t) => { const l = t.trim().split('\r\n'); assert.match(l[0], /^id,timestamp,level,agent/); assert.equal(l.length, 12); }],
    ['ndjson', (t) => { const l = t.trim().split('\n').map((x) => JSON.parse(x)); assert.equal(l.length, 11); assert.ok(l.every((e) => e.agent === 'checkout')); }]]) {
    const download = page.waitForEvent('download');
    await page.locator(`a.export[data-format=${format}]`).click();
    const d = await download;
    const text = await (await fetch(base + new URL(d.url()).pathname + new URL(d.url()).search)).text();
    check(text);
    assert.match(d.suggestedFilename(), new RegExp(`\\.${format === 'csv' ? 'csv' : 'ndjson'}$`));
  }
});

await test('over all time the histogram spans the data, with the year across a year boundary', async () => {
  const turn = Date.UTC(new Date().getUTCFullYear(), 0, 1);
  await ingest([-3, -2, -1, 1, 2].map((hr) => ({ timestamp: iso(turn + hr * 3600e3), agent: 'newyear', message: `party hour ${hr}` })));
  await page.goto(base + '/?q=agent%3Anewyear');
  await page.locator('.histo .bar').first().waitFor();
  await waitIdle();
  const labels = await page.locator('.histo text.axis').allTextContents();
  const year = new Date(turn).getFullYear();
  assert.ok(labels.some((l) => l.startsWith(`${year - 1}-12-31`)), `a label of the old year: ${labels}`);
  assert.ok(labels.some((l) => l.startsWith(`${year}-01-01`)), `a label of the new year: ${labels}`);
  // The bars span the entries: the first is the oldest's, the last the newest's, not now's.
  const first = await page.locator('.histo .bar title').first().textContent();
  assert.ok(first.startsWith(`${year - 1}-12-31`), `the first bar: ${first}`);
  const last = await page.locator('.histo .bar title').last().textContent();
  assert.ok(last.startsWith(`${year}-01-01`), `the last bar: ${last}`);
  await shot('histogram-new-year');
});

await test('one time zone for every time, remembered; ranges typed in it, ISO or relative', async () => {
  // The browser's zone, five and a half hours east of UTC.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Emulation.setTimezoneOverride', { timezoneId: 'Asia/Kolkata' });
  await page.goto(base + '/?q=NEEDLE-checkout-7731');
  await waitIdle();
  const shown = () => rows().first().locator('.ts').innerText();
  const at = new Date(needleAt);
  const p2 = (n) => String(n).padStart(2, '0');
  const local = new Date(needleAt + 5.5 * 3600e3);
  const hm = (d) => `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  assert.match(await page.locator('#zone').innerText(), /Local/);
  assert.ok((await shown()).includes(hm(local)), `local time shown: ${await shown()}`);
  await page.locator('#zone').click();
  await page.waitForFunction(() => document.querySelector('#zone').textContent === 'UTC');
  await page.waitForFunction((t) => document.querySelector('.list .row .ts')?.textContent.includes(t), hm(at));
  await rows().first().click();
  assert.match(await page.locator('.detail table.fields').innerText(), new RegExp(`timestamp\\s+\\d{4}-\\d\\d-\\d\\d ${hm(at)}\\.\\d{3} UTC`));
  // Remembered across a reload; the histogram's labels follow it too.
  await page.reload();
  await waitIdle();
  assert.equal(await page.locator('#zone').innerText(), 'UTC');
  assert.ok((await shown()).includes(hm(at)));
  // A custom range typed in the zone, with seconds, or relative to now.
  await page.goto(base + '/?q=NEEDLE-checkout-7731');
  await page.locator('#range').selectOption('custom');
  const day = `${at.getUTCFullYear()}-${p2(at.getUTCMonth() + 1)}-${p2(at.getUTCDate())}`;
  await page.locator('#from').fill(`${day} ${hm(new Date(needleAt - 1000))}`);
  await page.locator('#to').fill(`${day} ${hm(new Date(needleAt + 1000))}`);
  await page.locator('form.custom button[type=submit]').click();
  await page.waitForFunction(() => new URLSearchParams(location.search).has('from'));
  assert.equal(param('from'), new Date(Math.floor((needleAt - 1000) / 1000) * 1000).toISOString(), 'typed to the second, in UTC');
  await waitIdle();
  assert.equal(await domRows(), 1);
  await page.locator('#from').fill('now-3h');
  await page.locator('#to').fill('');
  await page.locator('form.custom button[type=submit]').click();
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('to'));
  const from = Date.parse(param('from'));
  assert.ok(Math.abs(from - (Date.now() - 3 * 3600e3)) < 60e3, `now-3h: ${param('from')}`);
  // A time that is none is refused in place.
  await page.locator('#from').fill('yesterday-ish');
  await page.locator('form.custom button[type=submit]').click();
  assert.equal(await page.locator('#from').evaluate((el) => el.validity.valid), false);
  await page.locator('#zone').click();
  await page.waitForFunction(() => /Local/.test(document.querySelector('#zone').textContent));
  await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' }).catch(() => {});
});

await test('oldest first: the first page is the oldest, scrolling goes on forward in time', async () => {
  await page.goto(base + '/?q=agent%3Acheckout&order=asc');
  await waitIdle();
  assert.equal(await page.locator('#order').inputValue(), 'asc');
  assert.deepEqual((await rowTexts('.msg')).slice(0, 3), ['checkout step 0', 'checkout step 1', 'checkout step 2']);
  await page.locator('#order').selectOption('');
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('order'));
  await waitIdle();
  assert.equal((await rowTexts('.msg'))[0], 'checkout step 10');
  // Over many pages, each one after the last.
  await page.goto(base + '/?order=asc&range=24h');
  await waitIdle();
  const times = () => page.locator('.list .row time').evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute('datetime'))));
  const top = await times();
  const list = page.locator('.list');
  for (let i = 0; i < 8; i++) {
    await list.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForTimeout(120);
  }
  await page.waitForFunction(() => !/Loading/.test(document.querySelector('.list .foot').textContent));
  const seen = await times();
  assert.ok(await list.evaluate((el) => el.scrollHeight / 28) > 300, 'several pages were fetched');
  assert.ok(seen[0] >= top[top.length - 1], 'the rows after scrolling are newer than the first page');
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'oldest first');
  // The live tail shows the newest first: turning it on turns the order back.
  await page.locator('#tail').click();
  await page.waitForFunction(() => { const p = new URLSearchParams(location.search); return p.get('tail') === '1' && !p.has('order'); });
  await page.locator('#tail').click();
  await page.waitForFunction(() => !new URLSearchParams(location.search).has('tail'));
});

await test('long and multi-line messages wrap on demand, remembered', async () => {
  const long = 'begin ' + 'lorem ipsum dolor sit amet '.repeat(40) + 'finish';
  await ingest([
    { agent: 'wrapper', message: 'first line\nsecond line\nthird line' },
    { agent: 'wrapper', message: long },
    { agent: 'wrapper', message: 'a short one' },
  ]);
  await page.goto(base + '/?q=agent%3Awrapper');
  await waitIdle();
  const height = (text) => page.locator('.list .entry', { hasText: text }).evaluate((e) => e.getBoundingClientRect().height);
  const one = await height('a short one');
  assert.ok(Math.abs((await height('first line')) - one) < 1 && Math.abs((await height('begin')) - one) < 1, 'one line each');
  const multi = page.locator('.list .row', { hasText: 'first line' }).locator('.msg');
  assert.match(await multi.innerText(), /first line ⏎ second line ⏎ third line/);
  await page.locator('#wrap').click();
  await page.waitForFunction(() => document.querySelector('.list').classList.contains('wrap'));
  assert.match(await multi.innerText(), /first line\nsecond line\nthird line/);
  assert.ok(await height('first line') >= 3 * 17, `three lines: ${await height('first line')}`);
  assert.ok(await height('begin') > 2 * one, `the long message over several lines: ${await height('begin')}`);
  assert.ok(Math.abs((await height('a short one')) - one) < 1, 'a short message keeps one line');
  assert.match(await page.locator('.list .row', { hasText: 'begin' }).innerText(), /finish/);
  // The rows stay stacked: each begins where the one before it ends.
  const tops = await page.locator('.list .entry').evaluateAll((els) => els.map((e) => [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom]));
  for (let i = 1; i < tops.length; i++) assert.ok(Math.abs(tops[i][0] - tops[i - 1][1]) < 1, `row ${i} is stacked`);
  await shot('wrapped');
  await page.reload();
  await waitIdle();
  assert.equal(await page.locator('#wrap').getAttribute('aria-pressed'), 'true');
  assert.ok(await height('first line') >= 3 * 17);
  await page.locator('#wrap').click();
  await page.waitForFunction(() => !document.querySelector('.list').classList.contains('wrap'));
  assert.ok(Math.abs((await height('first line')) - one) < 1);
});

await test('the layout fits this screen in this theme', async () => {
  await page.goto(base + '/?q=level%3A%3E%3DWARNING');
  await rows().first().waitFor();
  await page.locator('.histo .bar').first().waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, SCHEME === 'dark' ? 'rgb(15, 18, 24)' : 'rgb(246, 247, 249)');
  if (phone) {
    // Rows carry their date (month and day) beside the time.
    assert.match(await rows().first().locator('.ts').innerText(), /^\d\d-\d\d \d\d:\d\d:\d\d/);
  } else {
    assert.match(await rows().first().locator('.ts').innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  }
  await shot('layout-explorer');
  // The custom range fits the screen too.
  await page.locator('#range').selectOption('custom');
  await page.locator('form.custom').waitFor();
  const customOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(customOverflow <= 0, `no horizontal overflow with the custom range (${customOverflow})`);
  await shot('layout-custom-range');
  await openFacets();
  await page.locator('.facet[data-field=agent] .fv').first().waitFor();
  await shot('layout-facets');
  await page.locator('.facet[data-field=agent] .fv', { hasText: 'worker' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'level:>=WARNING agent:worker');
  await waitIdle();
  await rows().first().click();
  await page.locator('.detail pre.raw').waitFor();
  await shot('layout-expanded');
  await page.getByRole('button', { name: 'Show context' }).click();
  await page.locator('dialog.ctx[open] .ctxline.anchor').waitFor();
  await shot('layout-context');
  await page.keyboard.press('Escape');
  await page.goto(base + '/?view=dashboard');
  await page.locator('#p-agents tbody tr').first().waitFor();
  await shot('layout-dashboard');
});

await test('no script error on any page', async () => {
  assert.deepEqual(pageErrors, []);
});

await test('a page of another origin can neither write into the store nor read it', async () => {
  // The attacker's page, served from another port of 127.0.0.1 (another origin).
  const evil = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><script>
      (async () => {
        const out = {};
        const post = async (path, body) => {
          try {
            await fetch(${JSON.stringify(base)} + path, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body });
            return 'sent';
          } catch (e) { return 'failed'; }
        };
        out.write = await post('/api/logs', JSON.stringify({ agent: 'evil-page', message: 'written from another origin' }));
        out.sql = await post('/api/sql', JSON.stringify({ sql: "SELECT count(*) FROM logs" }));
        try { await (await fetch(${JSON.stringify(base)} + '/api/export')).text(); out.read = 'read'; }
        catch (e) { out.read = 'blocked'; }
        window.results = out;
      })();
    </script>`);
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  try {
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    await page.waitForFunction(() => window.results);
    const results = await page.evaluate(() => window.results);
    assert.equal(results.read, 'blocked', JSON.stringify(results));
    // The no-cors POSTs left the browser; the server refused them (nothing stored).
    const r = await fetch(base + '/api/query?q=agent:evil-page');
    assert.equal((await r.json()).logs.length, 0);
  } finally {
    evil.close();
  }
});

// --- a server with tokens: the sign-in ---------------------------------------------------
const READ = 'e2e-read-token-0123456789';
const ADMIN = 'e2e-admin-token-0123456789';
const sha = (t) => 'sha256:' + createHash('sha256').update(t).digest('hex');
const config2 = join(data, 'tokens.toml');
writeFileSync(config2, `[[auth.tokens]]\nname = "team"\nrole = "read"\nhash = "${sha(READ)}"\nscope = "agent:billing"\n\n`
  + `[[auth.tokens]]\nname = "root"\nrole = "admin"\nhash = "${sha(ADMIN)}"\n`);
const server2 = spawn(bin, ['--config', config2, 'serve', '--data', join(data, 'data2'), '--listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOGYARD_LOG: 'warn' },
});
const base2 = await new Promise((ok, fail) => {
  const rl = createInterface({ input: server2.stdout });
  rl.on('line', (line) => { const m = /^listening on (\S+)/.exec(line); if (m) ok(m[1]); });
  server2.on('exit', (code) => fail(new Error(`logyard serve with tokens exited (${code})`)));
});
{
  const res = await fetch(base2 + '/api/logs', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify(entries.slice(0, 400)),
  });
  assert.equal(res.status, 200);
}

await test('signs in with a token, reads within its scope, signs out', async () => {
  await page.goto(base2 + '/');
  await page.locator('#signin').waitFor();
  assert.equal(await page.locator('#nav').isVisible(), false);
  await shot('sign-in');
  await page.fill('#token', 'not-a-valid-token-000000');
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('signin-error')?.textContent.length > 0);
  await page.fill('#token', READ);
  await page.click('#signin button[type=submit]');
  await rows().first().waitFor();
  assert.match(await page.locator('#who').textContent(), /team · read · agent:billing/);
  assert.equal(await page.locator('#nav a[data-view=alerts]').isVisible(), false);
  assert.equal(await page.locator('#nav a[data-view=sources]').isVisible(), false);
  assert.equal(await page.locator('#nav a[data-view=explore]').isVisible(), true);
  // The cookie is HttpOnly, and the page's own requests read within the scope only.
  assert.equal(await page.evaluate(() => document.cookie), '');
  const agents = await page.evaluate(async () => {
    const r = await fetch('/api/query?q=*&limit=1000');
    return [...new Set((await r.json()).logs.map((e) => e.agent))];
  });
  assert.deepEqual(agents, ['billing']);
  await shot('signed-in-scoped');
  // Saved queries are kept on the server, for this token, not in the browser.
  await page.goto(base2 + '/?q=level%3AERROR&range=24h');
  await rows().first().waitFor().catch(() => {});
  await page.waitForFunction(() => !document.querySelector('.explore.busy'));
  page.once('dialog', (d) => d.accept('team errors'));
  await page.locator('#save').click();
  await page.waitForFunction(() => [...document.querySelectorAll('#saved option')].some((o) => o.textContent === 'team errors'));
  const kept = async () => (await (await fetch(base2 + '/api/saved-queries', { headers: { authorization: `Bearer ${READ}` } })).json()).queries;
  assert.deepEqual((await kept()).map((q) => [q.name, q.query, q.range]), [['team errors', 'level:ERROR', '24h']]);
  assert.equal(await page.evaluate(() => localStorage.getItem('logyard.saved')), null);
  await page.goto(base2 + '/');
  await page.locator('#saved').selectOption({ label: 'team errors' });
  await page.waitForFunction(() => { const p = new URLSearchParams(location.search); return p.get('q') === 'level:ERROR' && p.get('range') === '24h'; });
  await page.locator('#unsave').click();
  await page.waitForFunction(() => ![...document.querySelectorAll('#saved option')].some((o) => o.textContent === 'team errors'));
  assert.deepEqual(await kept(), []);
  await page.click('#signout');
  await page.locator('#signin').waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('/api/logs')).status), 401);
});

server2.kill('SIGTERM');
await context.close();
await cleanup();
clearTimeout(deadline);
const failed = results.filter(([, ok]) => !ok);
console.log(`\n${SCREEN}, ${SCHEME}: ${results.length - failed.length} passed, ${failed.length} failed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${shots}`);
process.exit(failed.length ? 1 : 0);
