// GET /metrics: scraped after real runs (the real server, real Docker sandboxes, the real Anthropic SDK
// against a fake model server) and parsed with a strict exposition-format parser.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { parsePrometheus, total, type Family } from './helpers/prometheus.ts';
import { readEvents, readUntil } from './helpers/sse.ts';
import { managedContainers, startTestServer, waitFor, type TestServer } from './helpers/server.ts';
import { Metrics } from '../lib/metrics.ts';

const API_KEY = 'metrics-test-api-key-0123456789';
const auth = { authorization: `Bearer ${API_KEY}` };

let anthropic: FakeModelServer;
let s: TestServer;

before(async () => {
  anthropic = await startFakeAnthropic();
  s = await startTestServer({
    env: { SANDCASTER_API_KEY: API_KEY, ANTHROPIC_API_KEY: 'sk-ant-metrics-test-key-123456', ANTHROPIC_BASE_URL: anthropic.url, SANDCASTER_SANDBOX_PROVIDER: 'docker' },
  });
});
after(async () => {
  await s.stop();
  await anthropic.close();
});

async function scrape(server: TestServer = s): Promise<Map<string, Family>> {
  const res = await server.fetch('/metrics', { headers: auth });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheus(await res.text());
}

/** Metric deltas between two scrapes. */
const delta = (a: Map<string, Family>, b: Map<string, Family>, name: string, labels: Record<string, string> = {}) => total(b, name, labels) - total(a, name, labels);

describe('the strict parser', () => {
  const good = '# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 2\nh_seconds_sum 3.5\nh_seconds_count 2\n';
  test('accepts a well-formed histogram and rejects each kind of defect', () => {
    assert.equal(total(parsePrometheus(good), 'h_seconds_count'), 2);
    const bad: [string, string][] = [
      [good.replace('le="1"} 1', 'le="1"} 3'), 'not cumulative'],
      [good.replace('h_seconds_count 2', 'h_seconds_count 5'), '_count'],
      [good.replace('{le="+Inf"}', '{le="9"}'), '+Inf'],
      [good.slice(0, -1), 'newline'],
      ['# TYPE c_total counter\nc_total{a="x\\q"} 1\n', 'escape'],
      ['c_total 1\n', 'outside'],
      ['# TYPE c_total counter\nc_total{1a="x"} 1\n', 'label name'],
      ['# TYPE c_total counter\nc_total 1\nc_total 2\n', 'repeated'],
      ['# TYPE c_total counter\nc_total -1\n', 'below zero'],
      ['# TYPE c_total counter\n\nc_total 1\n', 'neither'],
    ];
    for (const [text, why] of bad) assert.throws(() => parsePrometheus(text), (e: Error) => e.message.includes(why), `${why}: ${JSON.stringify(text)}`);
  });

  test('label values round-trip through escaping (backslash, quote, newline); model labels are bounded', () => {
    const m = new Metrics({ runsInFlight: () => 3 });
    const usage = { inputTokens: 5, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };
    const weird = 'we"ird\\mo\ndel';
    m.runEnded({ status: 'completed', errorCode: null, durationSecs: 2, model: weird, usage, costUsd: null });
    for (let i = 0; i < 150; i++) m.runEnded({ status: 'completed', errorCode: null, durationSecs: 0.5, model: `model-${i}`, usage, costUsd: 0.001 });
    const f = parsePrometheus(m.render());
    assert.equal(total(f, 'sandcaster_tokens_total', { model: weird, type: 'input' }), 5);
    const models = new Set(f.get('sandcaster_tokens_total')!.samples.map((x) => x.labels.model));
    assert.ok(models.size <= 101 && models.has('other'), `models beyond the cap share "other" (${models.size} labels)`);
    assert.equal(total(f, 'sandcaster_tokens_total', { type: 'input' }), 151 * 5, 'no tokens are lost to the cap');
    assert.equal(total(f, 'sandcaster_runs_in_flight'), 3, 'read at scrape time');
    assert.equal(total(f, 'sandcaster_run_duration_seconds_bucket', { le: '1' }), 150);
    assert.equal(total(f, 'sandcaster_run_duration_seconds_bucket', { le: '2.5' }), 151);
  });
});

describe('GET /metrics after real runs', () => {
  test('needs the API key like the rest of the API', async () => {
    const res = await s.fetch('/metrics');
    assert.equal(res.status, 401);
  });

  test('counts, tokens, cost and histograms move with a successful, a failed and a cancelled run', async () => {
    const t0 = await scrape();

    // 1: success, two model turns with one tool call in the sandbox.
    anthropic.setScript([
      { toolCalls: [{ name: 'bash', input: { command: 'echo hi' } }], usage: { input: 120, output: 30 } },
      { text: 'done', usage: { input: 80, output: 7 } },
    ]);
    const ok = await readEvents(await s.query({ prompt: 'go', model: 'sonnet' }, auth));
    const result = ok.at(-1)!;
    assert.equal(result.type, 'result', JSON.stringify(result));
    const t1 = await scrape();
    assert.equal(delta(t0, t1, 'sandcaster_runs_started_total', { provider: 'anthropic', sandbox_provider: 'docker' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_runs_ended_total', { status: 'completed', error_code: '' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_run_duration_seconds_count', { status: 'completed' }), 1);
    assert.ok(Math.abs(delta(t0, t1, 'sandcaster_run_duration_seconds_sum', { status: 'completed' }) - result.durationSecs) < 1e-9, 'the duration observed is the run’s');
    assert.equal(delta(t0, t1, 'sandcaster_run_duration_seconds_bucket', { status: 'completed', le: '+Inf' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_tokens_total', { model: 'claude-sonnet-4-6', type: 'input' }), result.inputTokens);
    assert.equal(delta(t0, t1, 'sandcaster_tokens_total', { model: 'claude-sonnet-4-6', type: 'output' }), result.outputTokens);
    assert.ok(result.inputTokens >= 200 && result.outputTokens >= 37, `the fake's usage came through (${result.inputTokens}/${result.outputTokens})`);
    assert.ok(result.costUsd > 0 && Math.abs(delta(t0, t1, 'sandcaster_cost_usd_total', { model: 'claude-sonnet-4-6' }) - result.costUsd) < 1e-12, `cost ${result.costUsd}`);
    assert.equal(delta(t0, t1, 'sandcaster_sandbox_create_seconds_count', { provider: 'docker' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_sandbox_destroy_seconds_count', { provider: 'docker' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_sandbox_create_seconds_bucket', { provider: 'docker', le: '60' }), 1, 'a Docker create lands in a finite bucket');
    assert.equal(total(t1, 'sandcaster_sandboxes_in_flight', { provider: 'docker' }), 0);
    assert.equal(total(t1, 'sandcaster_runs_in_flight'), 0);
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/query', status: '200' }), 1);

    // 2: the model API refuses: error MODEL_ERROR. The sandbox was being made beside that call; its creation is
    // abandoned, or what was made is destroyed, depending on which finished first.
    anthropic.setScript([{ error: { status: 400 } }]);
    const failed = (await readEvents(await s.query({ prompt: 'go', model: 'sonnet' }, auth))).at(-1)!;
    assert.equal(failed.code, 'MODEL_ERROR', JSON.stringify(failed));
    const t2 = await scrape();
    assert.equal(delta(t1, t2, 'sandcaster_runs_ended_total', { status: 'error', error_code: 'MODEL_ERROR' }), 1);
    assert.equal(delta(t1, t2, 'sandcaster_runs_ended_total', { status: 'completed' }), 0);
    assert.equal(delta(t1, t2, 'sandcaster_run_duration_seconds_count', { status: 'error' }), 1);

    // 3: in flight, then cancelled by the client going away.
    anthropic.setScript([{ toolCalls: [{ name: 'bash', input: { command: 'echo hi' } }] }, { hang: true }]);
    const res = await s.query({ prompt: 'go', model: 'sonnet' }, auth);
    const reader = readUntil(res, (e) => e.type === 'tool_result');
    const during = await (async () => {
      let last = await scrape();
      await waitFor(async () => total((last = await scrape()), 'sandcaster_sandboxes_in_flight', { provider: 'docker' }) === 1, 10_000);
      return last;
    })();
    assert.equal(total(during, 'sandcaster_runs_in_flight'), 1);
    assert.equal(total(during, 'sandcaster_sandboxes_in_flight', { provider: 'docker' }), 1);
    await reader; // cancels the body: the client is gone
    let t3 = during;
    assert.ok(
      await waitFor(async () => delta(t2, (t3 = await scrape()), 'sandcaster_runs_ended_total', { status: 'cancelled' }) === 1, 10_000),
      `the cancelled run is counted (${JSON.stringify(t3.get('sandcaster_runs_ended_total')?.samples)})`,
    );
    assert.equal(total(t3, 'sandcaster_runs_in_flight'), 0);
    assert.equal(total(t3, 'sandcaster_sandboxes_in_flight', { provider: 'docker' }), 0);
    assert.equal(delta(t0, t3, 'sandcaster_runs_started_total'), 3);
    const created = delta(t0, t3, 'sandcaster_sandbox_create_seconds_count', { provider: 'docker' });
    assert.ok(created === 2 || created === 3, `runs 1 and 3 made a sandbox, run 2 perhaps (${created})`);
    assert.equal(delta(t0, t3, 'sandcaster_sandbox_destroy_seconds_count', { provider: 'docker' }), created, 'every sandbox made was destroyed');
    assert.ok(await waitFor(async () => (await managedContainers(s.app.store.instanceId)).length === 0, 5000), 'no container left');
  });

  test('HTTP requests are labelled by route pattern, never by raw path; unknown paths share one label', async () => {
    const t0 = await scrape();
    for (const id of ['run_abc', 'run_def', 'x"y']) assert.equal((await s.fetch(`/runs/${encodeURIComponent(id)}`, { headers: auth })).status, 404);
    for (const p of ['/nope/1', '/nope/2', '/etc/passwd']) assert.equal((await s.fetch(p, { headers: auth })).status, 404);
    assert.equal((await s.fetch('/runs', { headers: auth })).status, 200);
    assert.equal((await s.fetch('/runs')).status, 401);
    assert.equal((await s.fetch('/health')).status, 200);
    const t1 = await scrape();
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/runs/:id', status: '404' }), 3);
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: 'unmatched', status: '404' }), 3);
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/runs', status: '200' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/runs', status: '401' }), 1);
    assert.equal(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/health', status: '200' }), 1);
    assert.ok(delta(t0, t1, 'sandcaster_http_requests_total', { route: '/metrics', status: '200' }) >= 1, 'the scrapes count too');
    const routes = new Set(t1.get('sandcaster_http_requests_total')!.samples.map((x) => x.labels.route));
    assert.deepEqual([...routes].filter((r) => !['/health', '/metrics', '/query', '/runs', '/runs/:id', '/webhooks/e2b', 'unmatched'].includes(r!)), [], 'only route patterns');
  });

  test('a second server in the same process keeps its own counts', async () => {
    const other = await startTestServer({ env: { SANDCASTER_API_KEY: API_KEY } });
    try {
      const f = await scrape(other);
      assert.equal(total(f, 'sandcaster_runs_started_total'), 0, 'no runs of the first server');
      assert.equal(total(f, 'sandcaster_http_requests_total', { route: '/runs/:id' }), 0);
      assert.ok(total(await scrape(), 'sandcaster_runs_started_total') >= 3, 'the first server still has its own');
    } finally {
      await other.stop();
    }
  });
});
