// Time to first results in the web UI: for a few searches, the time from navigation to the
// first rows of the result list on screen, to the histogram's bars, to the agent facet's
// values and to the values of a field's facet (`status`, added as a facet in this browser),
// and until all four are on screen, in headless Chromium against a running server (median
// of 5 navigations after one warm-up).
//
//   node bench/ui_first_results.mjs http://127.0.0.1:8062
//
// bench/ingest_query.py --ui runs it on the data it ingested. Needs
// `npm ci --prefix tests/e2e` (playwright-core) and Debian's chromium (or $CHROMIUM).

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(join(repo, 'tests/e2e/package.json'))('playwright-core');
const base = process.argv[2];
if (!base) {
  console.error('usage: node bench/ui_first_results.mjs BASE_URL');
  process.exit(2);
}
const RUNS = 5;
const searches = [
  ['newest of all time', ''],
  ['needle word', 'NEEDLE-42-5'],
  ['level:ERROR', 'level:ERROR'],
  ['agent:HERMES', 'agent:HERMES'],
  ['phrase', '"connection refused"'],
  ['regex', '~"response_time: [0-9]{4,}ms"'],
];

const profile = mkdtempSync(join(tmpdir(), 'logyard-bench-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  viewport: { width: 1280, height: 800 },
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(30_000);

const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const FIELD = 'status';
// The field's facet, as a user adds it (kept in this browser's storage).
await page.goto(base + '/?q=NOTHING-TO-FIND-here');
await page.evaluate((f) => localStorage.setItem('logyard.facets', JSON.stringify([f])), FIELD);
const heads = ['first rows', 'histogram', 'agent facet', `${FIELD} facet`, 'all shown'];
console.log(`${'search'.padEnd(22)} ${heads.map((x) => x.padStart(12)).join(' ')}`);
try {
  for (const [name, q] of searches) {
    const url = base + '/' + (q ? '?q=' + encodeURIComponent(q) : '');
    const times = heads.map(() => []);
    for (let i = 0; i <= RUNS; i++) {
      await page.goto('about:blank');
      const t0 = performance.now();
      await page.goto(url, { waitUntil: 'commit' });
      // Each waits from the navigation: they are requested at once and come in any order.
      const at = await Promise.all([
        page.locator('.list .row').first(),
        page.locator('.histo .bar').first(),
        page.locator('.facet[data-field=agent] .fv').first(),
        page.locator(`.facet[data-field=${FIELD}] :is(.fv, p:not(.counting))`).first(),
      ].map((l) => l.waitFor().then(() => performance.now() - t0)));
      at.push(Math.max(...at));
      if (i > 0) at.forEach((t, k) => times[k].push(t));
    }
    console.log(`${name.padEnd(22)} ${times.map((t) => `${median(t).toFixed(0)} ms`.padStart(12)).join(' ')}`);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
