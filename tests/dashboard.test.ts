// The dashboard (issue 16) in a real headless Chromium (Debian's `chromium`, driven by playwright-core; no
// browser download) against a real server: real Docker sandboxes, the real Anthropic SDK against the fake
// model server. The list (filters, paging past 200 runs), a finished run's page with its files, a live run
// followed to its end across a dropped connection, cancel, the new-run form, the API-key prompt, and a
// transcript full of markup that must stay text. Screenshots of the list and a run page are written and
// their paths printed (SANDCASTER_SCREENSHOTS=<dir> to choose where).
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startCuttingProxy } from './fixtures/cutting-proxy.ts';
import { startScriptedByPrompt, type ScriptedByPrompt } from './fixtures/fake-models.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'dashboard-test-key-0123456789';
const SHOTS = process.env.SANDCASTER_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'sandcaster-screens-'));

let fake: ScriptedByPrompt;
let s: TestServer;
let keyed: TestServer;
let browser: Browser;
let sentinel: Server;
let sentinelHits: string[] = [];
let sentinelUrl: string;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`);
  fake = await startScriptedByPrompt();
  const env = { ANTHROPIC_API_KEY: 'sk-ant-dashboard-test', ANTHROPIC_BASE_URL: fake.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' };
  s = await startTestServer({ env });
  keyed = await startTestServer({ env: { ...env, SANDCASTER_API_KEY: KEY } });
  // Any request here means markup from a transcript was acted on.
  sentinel = createServer((req, res) => {
    sentinelHits.push(req.url ?? '');
    res.end('gotcha');
  });
  await new Promise<void>((resolve) => sentinel.listen(0, '127.0.0.1', resolve));
  sentinelUrl = `http://127.0.0.1:${(sentinel.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(SHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await s.stop();
  await keyed.stop();
  await fake.close();
  await new Promise((resolve) => sentinel.close(resolve));
});
afterEach(async () => {
  assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 10_000), 'no sandbox left');
});

interface Tab {
  page: Page;
  context: BrowserContext;
  dialogs: string[];
  errors: string[];
  requests: string[];
  close(): Promise<void>;
}

/** A fresh browser context (no storage) on `hash` of the server's dashboard; records dialogs, page errors and every request. */
async function open(server: { url: string }, hash = '#/'): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, acceptDownloads: true });
  const page = await context.newPage();
  const tab: Tab = { page, context, dialogs: [], errors: [], requests: [], close: () => context.close() };
  page.on('dialog', (d) => {
    tab.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => tab.errors.push(String(e)));
  page.on('console', (m) => {
    // The API's own refusals (401 before the key, 400 for a bad form) are expected; anything else is not.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) tab.errors.push(m.text());
  });
  context.on('request', (r) => tab.requests.push(r.url()));
  await page.goto(`${server.url}/${hash}`);
  return tab;
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function detach(body: object, server: TestServer = s, headers: Record<string, string> = {}): Promise<string> {
  const res = await server.fetch('/query', { ...json({ model: 'haiku', ...body, detach: true }), headers: { 'content-type': 'application/json', ...headers } });
  assert.equal(res.status, 202, `detach answers 202, got ${res.status}: ${await res.clone().text()}`);
  return ((await res.json()) as { runId: string }).runId;
}

/** Starts a run and waits for its end (through its events). */
async function finishedRun(body: object, server: TestServer = s, headers: Record<string, string> = {}): Promise<string> {
  const id = await detach(body, server, headers);
  const res = await server.fetch(`/runs/${id}/events`, { headers });
  await res.text();
  return id;
}

function screenshot(t: TestContext, page: Page, name: string): Promise<unknown> {
  const path = join(SHOTS, `${name}.png`);
  t.diagnostic(`screenshot: ${path}`);
  console.log(`screenshot: ${path}`);
  return page.screenshot({ path, fullPage: false });
}

// A 2x3 PNG (red, green, blue / white, black, grey), written by the sandbox with printf.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAADCAIAAAA2iEnWAAAAHklEQVR4nGP4z8DAwPD//39GRkZGBiYmJmYGBgYGBgYAWvcH/7Wb4nQAAAAASUVORK5CYII=',
  'base64',
);
const octal = (b: Uint8Array) => Array.from(b, (x) => `\\${x.toString(8).padStart(3, '0')}`).join('');

describe('static files', () => {
  test('GET / and /ui/*: types, CSP and security headers, ETag/304, HEAD; only the known files; no key needed even with one set', async () => {
    for (const server of [s, keyed]) {
      const page = await server.fetch('/');
      assert.equal(page.status, 200, `GET / on ${server === keyed ? 'keyed' : 'open'} server`);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(
        page.headers.get('content-security-policy'),
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(page.headers.get('cache-control'), 'no-cache');
      const html = await page.text();
      assert.ok(!/<script>|<script [^>]*>[^<]|\son\w+=|\sstyle=/.test(html), 'no inline script, handler or style');
      const scripts = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
      assert.deepEqual(scripts, ['/ui/app.js']);
      const js = await server.fetch('/ui/app.js');
      assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
      const css = await server.fetch('/ui/style.css');
      assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
      const etag = js.headers.get('etag')!;
      assert.match(etag, /^"[\w-]+"$/);
      const again = await server.fetch('/ui/app.js', { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      const head = await server.fetch('/ui/run.js', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers.get('content-length')) > 100, 'HEAD has the length');
    }
    // Nothing else under /ui, however it is spelled; the API keeps its own rules around it.
    for (const path of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/%2e%2e%2fserver.ts', '/ui/', '/index.html']) {
      const res = await s.fetch(path);
      assert.equal(res.status, 404, `${path} -> ${res.status}`);
    }
    assert.equal((await keyed.fetch('/ui/nope.js')).status, 401, 'an unknown path still needs the key');
    assert.equal((await keyed.fetch('/runs')).status, 401, 'the API still needs the key');
    assert.equal((await s.fetch('/', { method: 'POST' })).status, 405);
    assert.deepEqual(await (await s.fetch('/health')).json(), { status: 'ok', version: '0.1.0' });
  });

  test('open API: the page\'s own origin may POST; another origin on the same machine may not', async () => {
    const host = new URL(s.url).host;
    const own = await s.fetch('/query', { method: 'POST', headers: { origin: `http://${host}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(own.status, 400, 'same origin reaches validation');
    const other = await s.fetch('/query', { method: 'POST', headers: { origin: 'http://127.0.0.1:1', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as any).error.code, 'FORBIDDEN_ORIGIN');
    const rebound = await s.fetch('/query', { method: 'POST', headers: { origin: 'http://evil.example:80', host: 'evil.example:80', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(rebound.status, 403, 'a rebinding page whose Origin matches its Host is still refused by the Host check');
  });
});

describe('the runs list', () => {
  test('status, model, provider, cost, tokens, turns, duration, started; filter by status; screenshot', async (t) => {
    const ok = await finishedRun({ prompt: `${fake.script('list-ok', [{ text: 'fine', usage: { input: 1200, output: 345 } }])} summarise the data` });
    const bad = await finishedRun({ prompt: `${fake.script('list-bad', [{ error: { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'nope' } } } }])} this one fails` });
    const tab = await open(s);
    try {
      const { page } = tab;
      await page.waitForSelector(`tr[data-id="${bad}"]`);
      const okRow = page.locator(`tr[data-id="${ok}"] td`);
      const cells = await okRow.allInnerTexts();
      assert.equal(cells[0], 'completed');
      assert.equal(cells[1], ok);
      assert.match(cells[2]!, /summarise the data/);
      assert.equal(cells[3], 'claude-haiku-4-5');
      assert.equal(cells[4], 'anthropic');
      assert.match(cells[5]!, /^\$\d/, 'cost');
      assert.equal(cells[6], '1,200 in / 345 out');
      assert.equal(cells[7], '1');
      assert.match(cells[8]!, /^\d+\.\d s$/, 'duration');
      assert.match(cells[9]!, /ago$/);
      assert.match((await page.locator(`tr[data-id="${bad}"] td`).first().innerText()), /error\s+MODEL_ERROR/);
      await screenshot(t, page, 'dashboard-list');

      await page.selectOption('#status-filter', 'error');
      await page.waitForFunction(() => location.hash === '#/?status=error');
      await page.waitForSelector(`tr[data-id="${bad}"]`);
      const statuses = await page.locator('#runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
      assert.ok(statuses.length >= 1 && statuses.every((x) => x === 'error'), `only error runs: ${statuses}`);
      assert.equal(await page.locator(`tr[data-id="${ok}"]`).count(), 0);
      await page.click(`tr[data-id="${bad}"] a.run-link`);
      await page.waitForSelector('[data-kind="error"]');
      assert.match(await page.locator('[data-kind="error"]').innerText(), /MODEL_ERROR/);
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  test('pages past 200 runs with Older / Newer (260 runs, 50 a page)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandcaster-paging-'));
    const many = await startTestServer({ env: { ANTHROPIC_API_KEY: 'x' }, dir });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 260; i++) {
        const id = `run_seed${String(i).padStart(4, '0')}`;
        ids.unshift(id); // newest first
        many.app.store.insert({ id, prompt: `seeded run ${i}`, model: 'claude-haiku-4-5', provider: 'anthropic', sandboxProvider: 'docker', startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() });
        many.app.store.finish(id, { status: 'completed', errorCode: null, error: null, costUsd: 0.001, inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0, numTurns: 1, durationSecs: 1, filesCount: 0, sandboxCount: 1 }, new Date(Date.UTC(2026, 0, 1, 0, 1, i)).toISOString());
      }
      const tab = await open(many);
      try {
        const { page } = tab;
        const shown = async () => {
          await page.waitForSelector('#runs-table tbody tr');
          return page.locator('#runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
        };
        const pages: string[][] = [];
        for (let p = 0; p < 6; p++) {
          if (p > 0) {
            const before = pages.at(-1)!.at(-1)!;
            await page.click('#page-older');
            await page.waitForFunction((id) => location.hash.includes(`before=${id}`) && document.querySelector('#runs-table tbody tr')?.getAttribute('data-id') !== id, before);
          }
          pages.push((await shown()) as string[]);
        }
        assert.deepEqual(pages.flat(), ids, 'every run once, newest first, across six pages');
        assert.deepEqual(pages.map((p) => p.length), [50, 50, 50, 50, 50, 10]);
        assert.ok(await page.locator('#page-older').isDisabled(), 'no page after the last');
        await page.click('#page-newer');
        await page.waitForFunction((id) => document.querySelector('#runs-table tbody tr')?.getAttribute('data-id') === id, pages[4]![0]!);
        assert.deepEqual(await shown(), pages[4], 'Newer goes back one page');
      } finally {
        await tab.close();
      }
    } finally {
      await many.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a run page', () => {
  test('a finished run: text, thinking folded, tool input and output with exit codes, warning, result, files downloaded and previewed; screenshot', async (t) => {
    const prompt = fake.script('page', [
      {
        thinking: 'I should count the rows first.',
        text: 'Counting the rows. ',
        toolCalls: [{ name: 'bash', input: { command: `printf 'a,b\\n1,2\\n3,4\\n' > data.csv; wc -l data.csv; printf '${octal(PNG)}' > chart.png` } }],
      },
      { toolCalls: [{ name: 'bash', input: { command: 'cat missing.txt' } }, { name: 'write_file', input: { path: 'notes/summary.md', content: '# Summary\n3 lines, 2 rows of data.\n' } }] },
      { text: 'There are **2** data rows.' },
    ]);
    const id = await finishedRun({ prompt: `${prompt} count the rows of data.csv`, model: 'claude-dashboard-unpriced' });
    const tab = await open(s, `#/runs/${id}`);
    try {
      const { page } = tab;
      await page.waitForSelector('[data-kind="result"]');
      assert.equal(await page.locator('#run-status').innerText(), 'completed');
      const facts = await page.locator('#run-facts').innerText();
      assert.match(facts, /claude-dashboard-unpriced/);
      assert.match(facts, /Turns\s+3/);
      assert.match(await page.locator('#run-prompt').innerText(), /count the rows of data\.csv/);

      const assistant = (await page.locator('[data-kind="assistant"]').allTextContents()).map((x) => x.trim());
      assert.deepEqual(assistant, ['Counting the rows.', 'There are **2** data rows.'], 'assistant text as text (markdown not rendered)');
      const thinking = page.locator('details[data-kind="thinking"]');
      assert.equal(await thinking.count(), 1);
      assert.equal(await thinking.evaluate((d) => (d as HTMLDetailsElement).open), false, 'thinking is folded');
      await thinking.locator('summary').click();
      assert.match(await thinking.innerText(), /I should count the rows first\./);

      const tools = page.locator('[data-kind="tool"]');
      assert.equal(await tools.count(), 3);
      const first = tools.nth(0);
      assert.match(await first.locator('.tool-summary').innerText(), /printf 'a,b/);
      assert.equal(await first.locator('.tool-status').innerText(), 'exit 0');
      assert.match(await first.locator('pre.out').innerText(), /3 data\.csv/);
      assert.match(await first.locator('.tool-input pre').textContent() ?? '', /"command": "printf/, 'the input, as JSON');
      const second = tools.nth(1);
      assert.equal(await second.locator('.tool-status').innerText(), 'exit 1');
      assert.match(await second.locator('.tool-status').getAttribute('class') ?? '', /error/);
      assert.match(await second.locator('pre.out').innerText(), /No such file/);
      assert.match(await page.locator('[data-kind="warning"]').first().innerText(), /UNKNOWN_PRICE/);
      assert.match(await page.locator('[data-kind="result"]').innerText(), /3 turns/);

      // Previews in the transcript: the image decoded from blob: bytes, text as text.
      const img = page.locator('[data-kind="file"] img.file-image');
      await img.waitFor();
      assert.match((await img.getAttribute('src')) ?? '', /^blob:/);
      assert.deepEqual(await img.evaluate((i: HTMLImageElement) => (i.complete ? [i.naturalWidth, i.naturalHeight] : null)), [2, 3], 'the PNG decoded');
      assert.match(await page.locator('[data-kind="file"] pre.file-text').first().innerText(), /a,b\n1,2\n3,4/);

      // The Files section: downloads straight from GET /runs/:id/files/<path>, byte for byte.
      const rows = page.locator('[data-kind="stored-file"]');
      assert.deepEqual(await rows.locator('.file-name').allInnerTexts(), ['chart.png', 'data.csv', 'notes/summary.md']);
      const [download] = await Promise.all([page.waitForEvent('download'), rows.nth(0).locator('button', { hasText: 'Download' }).click()]);
      assert.equal(download.suggestedFilename(), 'chart.png');
      assert.deepEqual(readFileSync((await download.path())!), PNG, 'the downloaded bytes are the file');
      const [md] = await Promise.all([page.waitForEvent('download'), rows.nth(2).locator('button', { hasText: 'Download' }).click()]);
      assert.equal(md.suggestedFilename(), 'summary.md');
      assert.equal(readFileSync((await md.path())!, 'utf8'), '# Summary\n3 lines, 2 rows of data.\n');
      await rows.nth(2).locator('button', { hasText: 'Preview' }).click();
      await rows.nth(2).locator('pre.file-text').waitFor();
      assert.equal(await rows.nth(2).locator('pre.file-text').innerText(), '# Summary\n3 lines, 2 rows of data.\n');
      assert.ok(tab.requests.some((u) => u.endsWith(`/runs/${id}/files/chart.png`)), 'downloaded through the files API');
      await page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(t, page, 'dashboard-run');
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  test('a live run is followed to its end, reattaching when the connection drops', async () => {
    const proxy = await startCuttingProxy(s.url);
    const prompt = fake.script('live', [
      { text: ['Step ', 'one. '], toolCalls: [{ name: 'bash', input: { command: 'echo first' } }] },
      { delayMs: 1500, text: ['Step ', 'two. '], toolCalls: [{ name: 'bash', input: { command: 'echo second' } }] },
      { delayMs: 500, text: ['All ', 'done.'], deltaDelayMs: 100 },
    ]);
    const id = await detach({ prompt });
    const tab = await open(proxy, `#/runs/${id}`);
    try {
      const { page } = tab;
      await page.waitForSelector('[data-kind="tool"] .tool-status.ok');
      assert.ok(!(await page.locator('[data-kind="result"]').count()), 'still running when the connection is cut');
      assert.equal(await page.locator('#run-status').innerText(), 'running');
      assert.ok(await page.locator('#cancel-run').isVisible(), 'a running run has a cancel button');
      const before = proxy.connections;
      assert.ok(proxy.cut() >= 1, 'the event stream was cut');
      await page.waitForSelector('[data-kind="result"]', { timeout: 30_000 });
      assert.ok(proxy.connections > before, 'the page connected again');
      assert.deepEqual(await page.locator('[data-kind="assistant"]').allTextContents(), ['Step one. ', 'Step two. ', 'All done.'], 'each delta once, in order');
      const outputs = await page.locator('[data-kind="tool"] pre.out').allInnerTexts();
      assert.equal(outputs.length, 2, `each tool call once: ${JSON.stringify(outputs)}`);
      assert.match(outputs[0]!, /^first\b/);
      assert.match(outputs[1]!, /^second\b/);
      await page.waitForFunction(() => document.getElementById('run-status')?.textContent === 'completed');
      assert.ok(await page.locator('#cancel-run').isHidden(), 'no cancel button once finished');
      assert.deepEqual(tab.errors.filter((e) => !e.includes('ERR_INCOMPLETE_CHUNKED_ENCODING')), [], 'only the cut stream is reported');
    } finally {
      await tab.close();
      await proxy.close();
    }
  });

  test('the cancel button ends a running run with CANCELLED', async () => {
    const id = await detach({ prompt: fake.script('cancel', [{ toolCalls: [{ name: 'bash', input: { command: 'echo working' } }] }, { hang: true }]) });
    const tab = await open(s, `#/runs/${id}`);
    try {
      const { page } = tab;
      await page.waitForSelector('[data-kind="tool"] .tool-status.ok');
      assert.ok(await waitFor(() => fake.calls('cancel') === 2, 10_000), 'the run waits on its second model call');
      await page.click('#cancel-run');
      await page.waitForSelector('[data-kind="error"]');
      assert.match(await page.locator('[data-kind="error"]').innerText(), /CANCELLED/);
      await page.waitForFunction(() => document.getElementById('run-status')?.textContent === 'cancelled');
      const row = (await (await s.fetch(`/runs/${id}`)).json()) as any;
      assert.equal(row.status, 'cancelled');
      assert.equal(row.errorCode, 'CANCELLED');
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });
});

describe('the new-run form', () => {
  test('prompt, model, a file and an output schema: the run streams on its page as it happens', async () => {
    const prompt = fake.script('form', [
      { text: 'Reading it. ', toolCalls: [{ name: 'bash', input: { command: 'cat input.txt' } }] },
      { delayMs: 300, text: '{"lines": 2}' },
    ]);
    const tab = await open(s, '#/new');
    try {
      const { page } = tab;
      await page.fill('#new-prompt', `${prompt} count the lines of input.txt`);
      await page.fill('#new-model', 'haiku');
      await page.setInputFiles('#new-files', { name: 'input.txt', mimeType: 'text/plain', buffer: Buffer.from('one\ntwo\n') });
      await page.fill('#new-schema', JSON.stringify({ type: 'object', properties: { lines: { type: 'integer' } }, required: ['lines'] }));
      await page.click('#new-submit');
      await page.waitForFunction(() => /^#\/runs\/run_/.test(location.hash));
      const id = decodeURIComponent((await page.evaluate(() => location.hash)).slice('#/runs/'.length));
      await page.waitForSelector('[data-kind="result"]');
      assert.match(await page.locator('[data-kind="tool"] pre.out').first().innerText(), /^one\ntwo\n/, 'the uploaded file was in /workspace');
      assert.match(await page.locator('[data-kind="result"] pre.structured').innerText(), /"lines": 2/);
      const postOnly = tab.requests.filter((u) => u.includes(`/runs/${id}/events`));
      assert.deepEqual(postOnly, [], 'the form streamed the /query answer itself; no reattach was needed');
      const row = (await (await s.fetch(`/runs/${id}`)).json()) as any;
      assert.equal(row.status, 'completed');
      assert.deepEqual(row.structuredOutput, { lines: 2 });
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  test('detach opens the run page, which follows the run; bad schema and server refusals are shown in the form', async () => {
    const prompt = fake.script('form-detach', [{ delayMs: 500, text: 'detached and done' }]);
    const tab = await open(s, '#/new');
    try {
      const { page } = tab;
      await page.fill('#new-prompt', prompt);
      await page.fill('#new-model', 'haiku');
      await page.fill('#new-schema', '{nope');
      await page.click('#new-submit');
      assert.match(await page.locator('#new-error').innerText(), /INVALID_SCHEMA/);
      await page.fill('#new-schema', '{"type": 12}');
      await page.click('#new-submit');
      await page.waitForSelector('#new-error [data-kind="error"]');
      assert.match(await page.locator('#new-error').innerText(), /INVALID_REQUEST.*outputFormat/s);
      await page.fill('#new-schema', '');
      await page.check('#new-detach');
      await page.click('#new-submit');
      await page.waitForSelector('[data-kind="result"]');
      assert.deepEqual(await page.locator('[data-kind="assistant"]').allTextContents(), ['detached and done']);
      assert.ok(tab.requests.some((u) => /\/runs\/run_[^/]+\/events$/.test(u)), 'the run page read the events of the detached run');
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });
});

describe('the API key', () => {
  test('asked for when the server has one, kept in session storage only, refused keys say so, Forget key asks again', async () => {
    const id = await finishedRun({ prompt: fake.script('keyed', [{ text: 'secret stuff' }]) }, keyed, { authorization: `Bearer ${KEY}` });
    const tab = await open(keyed);
    try {
      const { page } = tab;
      await page.waitForSelector('#key-prompt:not([hidden])');
      assert.ok(await page.locator('#main').isHidden(), 'nothing shown without the key');
      await page.fill('#key-input', 'wrong-key');
      await page.click('#key-form button');
      await page.waitForSelector('#key-error:not([hidden])');
      assert.match(await page.locator('#key-error').innerText(), /refused/);
      await page.fill('#key-input', KEY);
      await page.click('#key-form button');
      await page.waitForSelector(`tr[data-id="${id}"]`);
      const storage = await page.evaluate(() => ({ session: { ...sessionStorage }, local: { ...localStorage }, cookie: document.cookie }));
      assert.deepEqual(storage, { session: { 'sandcaster.apiKey': KEY }, local: {}, cookie: '' });
      await page.reload();
      await page.waitForSelector(`tr[data-id="${id}"]`);
      assert.ok(await page.locator('#key-prompt').isHidden(), 'the key lasts for the tab');
      await page.click(`tr[data-id="${id}"] a.run-link`);
      await page.waitForSelector('[data-kind="result"]');
      await page.click('#forget-key');
      await page.waitForSelector('#key-prompt:not([hidden])');
      assert.deepEqual(await page.evaluate(() => ({ ...sessionStorage })), {});
      assert.deepEqual(tab.errors, []);
      const other = await browser.newContext();
      const fresh = await other.newPage();
      await fresh.goto(`${keyed.url}/`);
      await fresh.waitForSelector('#key-prompt:not([hidden])');
      await other.close();
    } finally {
      await tab.close();
    }
  });
});

describe('untrusted content', () => {
  test('markup in the prompt, assistant text, thinking, tool input and output, file names and contents, warnings and errors is shown as text and runs nothing', async () => {
    const S = sentinelUrl;
    const payloads = [`<img src=x onerror=alert(1)>`, `<script>alert(2)</script>`, `<img src="${S}/img">`, `<iframe src="${S}/frame"></iframe>`, `<a href="javascript:alert(3)">x</a>`];
    const markup = payloads.join(' ');
    const prompt = fake.script('xss', [
      {
        thinking: markup,
        text: markup,
        toolCalls: [
          { name: 'bash', input: { command: `echo '<img src=x onerror=alert(4)>'; echo '<script>fetch("${S}/bash")</script>'; printf '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(5)"><script>alert(6)</script></svg>' > evil.svg` } },
          { name: 'write_file', input: { path: '<img src=x onerror=alert(7)>.html', content: `<script>alert(8)</script><img src="${S}/file">` } },
          { name: 'write_file', input: { path: `<script>alert(9)<\\script>.txt`, content: 'x' } },
        ],
      },
      { text: `done ${markup}` },
    ]);
    const ok = await finishedRun({ prompt: `${prompt} ${markup}`, model: 'claude-xss-unpriced' });
    const failed = await finishedRun({ prompt: fake.script('xss-err', [{ error: { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: markup } } } }]) });
    sentinelHits = [];
    const tab = await open(s);
    try {
      const { page } = tab;
      await page.waitForSelector(`tr[data-id="${ok}"]`);
      assert.match(await page.locator(`tr[data-id="${ok}"] .prompt-cell`).innerText(), /<img src=x onerror=alert\(1\)>/);
      await page.click(`tr[data-id="${ok}"] a.run-link`);
      await page.waitForSelector('[data-kind="result"]');
      await page.locator('details').evaluateAll((ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
      for (const button of await page.locator('[data-kind="stored-file"] button', { hasText: 'Preview' }).all()) await button.click();
      await page.waitForFunction(() => document.querySelectorAll('[data-kind="stored-file"] .preview').length >= 2);
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-kind="stored-file"] button', { hasText: 'Download' }).first().click()]);
      await download.path();
      const text = await page.locator('main').innerText();
      for (const p of payloads) assert.ok(text.includes(p), `shown literally: ${p}`);
      assert.ok(text.includes('<img src=x onerror=alert(7)>.html'), 'the file name as text');
      assert.ok(text.includes('onload="alert(5)"'), 'the SVG as text');
      const fileNames = await page.locator('[data-kind="stored-file"] .file-name').allInnerTexts();
      assert.ok(fileNames.includes('<img src=x onerror=alert(7)>.html'), `file names: ${fileNames}`);

      await page.goto(`${s.url}/#/runs/${failed}`);
      await page.waitForSelector('[data-kind="error"]');
      assert.ok((await page.locator('[data-kind="error"]').innerText()).includes('<script>alert(2)</script>'), 'the error message as text');

      const dom = await page.evaluate(() => ({ scripts: document.scripts.length, iframes: document.querySelectorAll('iframe').length, anchorsJs: document.querySelectorAll('a[href^="javascript"]').length }));
      assert.deepEqual(dom, { scripts: 1, iframes: 0, anchorsJs: 0 }, 'no element came from the content');
      assert.deepEqual(tab.dialogs, [], 'no dialog opened');
      assert.deepEqual(sentinelHits, [], 'no request reached the sentinel');
      assert.deepEqual(tab.requests.filter((u) => u.startsWith(S) || u.endsWith('/x')), [], 'the browser asked for nothing the content named');
      assert.deepEqual(tab.errors, [], 'no script error and no CSP report');
    } finally {
      await tab.close();
    }
  });
});
