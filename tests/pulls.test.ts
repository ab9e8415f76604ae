// Image pulls as a client sees them: a real server, the real Docker engine pulling from a registry on
// 127.0.0.1 (tests/fixtures/registry.ts) that sends the layer slowly, fake model servers.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeAnthropic, type FakeModelServer } from './fixtures/fake-models.ts';
import { startFakeRegistry, type FakeRegistry } from './fixtures/registry.ts';
import { docker, managedContainers, startTestServer, TEST_IMAGE, waitFor, type TestServer } from './helpers/server.ts';

const KEY = 'sk-ant-pulls-test-key-1234567890';
let model: FakeModelServer;
let registry: FakeRegistry;
const servers: TestServer[] = [];
const images: string[] = [];

before(async () => {
  // A prompt containing "sleepy" asks for a long command (to meet the run's timeout); any other gets an answer.
  model = await startFakeAnthropic((body) =>
    JSON.stringify(body.messages).includes('sleepy') && !JSON.stringify(body.messages).includes('tool_result')
      ? { toolCalls: [{ name: 'bash', input: { command: 'sleep 120' } }] }
      : { text: 'done' },
  );
  registry = await startFakeRegistry(docker, TEST_IMAGE);
  // Loaded once per process: the first run would otherwise spend seconds of its short timeout importing the SDK.
  await import('../providers/anthropic/index.ts');
});
after(async () => {
  await model.close();
  await registry.close();
});
afterEach(async () => {
  for (const s of servers.splice(0)) {
    const instance = s.app.store.instanceId;
    await s.stop();
    assert.equal((await managedContainers(instance)).length, 0, 'no sandbox left');
  }
  for (const image of images.splice(0)) await docker.getImage(image).remove({ force: true }).catch(() => {});
});

async function server(image: string, config: object = {}): Promise<TestServer> {
  const s = await startTestServer({
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: model.url, SANDCASTER_SANDBOX_PROVIDER: 'docker', SANDCASTER_DOCKER_IMAGE: image },
    config,
  });
  servers.push(s);
  return s;
}

function freshImage(tag: string): string {
  const image = registry.image(`${tag}-${randomBytes(4).toString('hex')}`);
  images.push(image);
  return image;
}

/** Reads a stream to its end; each event with the time it arrived. */
async function timedEvents(res: Response): Promise<(Record<string, any> & { at: number })[]> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  const out: (Record<string, any> & { at: number })[] = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
      buf = buf.slice(i + 2);
      if (data) out.push({ ...JSON.parse(data.slice(6)), at: Date.now() });
    }
  }
  return out;
}

const pullEvents = (events: Record<string, any>[]) => events.filter((e) => e.type === 'system' && e.subtype === 'image_pull');
const label = (e: Record<string, any>) => (e.type === 'system' ? `${e.subtype}${e.stage ? `:${e.stage}` : ''}` : e.type);

describe('image pulls', { timeout: 180_000 }, () => {
  test('two runs needing a missing image share one pull, see it on their streams, and the pull does not count against their timeout', async () => {
    const image = freshImage('shared');
    registry.setLayerMs(9000); // longer than the runs' 8 s timeout
    const s = await server(image);
    const [fast, sleepy] = await Promise.all([
      s.query({ prompt: 'say done', model: 'sonnet', timeout: 8 }).then(timedEvents),
      s.query({ prompt: 'be sleepy', model: 'sonnet', timeout: 8 }).then(timedEvents),
    ]);
    assert.equal(registry.layerRequests(image), 1, 'one download for both runs');
    for (const [name, events] of [['fast', fast], ['sleepy', sleepy]] as const) {
      const pulls = pullEvents(events);
      const stages = pulls.map((e) => e.stage);
      assert.equal(stages[0], 'start', `${name}: ${stages.join(',')}`);
      assert.equal(stages.at(-1), 'end', `${name}: ${stages.join(',')}`);
      assert.equal(stages.filter((x) => x === 'start' || x === 'end').length, 2, `${name}: one start, one end: ${stages.join(',')}`);
      const progress = pulls.filter((e) => e.stage === 'progress');
      assert.ok(progress.length >= 4, `${name}: progress while the layer came in over 9 s: ${progress.length} events`);
      for (let i = 1; i < progress.length; i++) {
        const gap = progress[i]!.at - progress[i - 1]!.at;
        assert.ok(gap >= 900, `${name}: progress events at most once a second, saw ${gap} ms between two`);
      }
      for (const p of progress) {
        assert.ok(p.downloadedBytes <= p.totalBytes && p.totalBytes > 0 && p.layers === 1, `${name}: progress figures ${JSON.stringify(p)}`);
        assert.match(p.content, /^pulling image .+: [\d.]+ of [\d.]+ MB, [01] of 1 layers$/);
      }
      const end = pulls.at(-1)!;
      assert.deepEqual([end.ok, end.sandbox, end.image], [true, 'main', image], JSON.stringify(end));
      assert.ok(end.durationSecs > 8, `${name}: the pull took ${end.durationSecs} s, longer than the run's timeout`);
      // The pull comes between the run's start and its sandbox.
      const order = events.map(label);
      assert.ok(order.indexOf('run_started') < order.indexOf('image_pull:start') && order.indexOf('image_pull:end') < order.indexOf('sandbox_created'), `${name}: ${order.join(',')}`);
    }
    const fastEnd = fast.at(-1)!;
    assert.equal(fastEnd.type, 'result', `the pull did not count against the timeout: ${JSON.stringify(fastEnd)}`);
    assert.ok(fastEnd.durationSecs > 8, `the run took ${fastEnd.durationSecs} s in all, past its 8 s timeout, and still completed`);
    // The clock resumed after the pull: the run that then sleeps still meets its timeout.
    const sleepyEnd = sleepy.at(-1)!;
    assert.deepEqual([sleepyEnd.type, sleepyEnd.code], ['error', 'TIMEOUT'], JSON.stringify(sleepyEnd));
    const pullEnd = pullEvents(sleepy).at(-1)!.at;
    assert.ok(sleepyEnd.at - pullEnd < 30_000, `the timeout still applies after the pull (ended ${sleepyEnd.at - pullEnd} ms after it)`);
  });

  test('a pull past docker.pullTimeoutSeconds ends the run with SANDBOX_ERROR that names the setting', async () => {
    const image = freshImage('slow');
    registry.setLayerMs(20_000);
    const s = await server(image, { docker: { pullTimeoutSeconds: 2 } });
    const events = await timedEvents(await s.query({ prompt: 'say done', model: 'sonnet', timeout: 60 }));
    const end = pullEvents(events).at(-1)!;
    assert.deepEqual([end.stage, end.ok], ['end', false], JSON.stringify(end));
    assert.match(end.error, /within 2 s/);
    const last = events.at(-1)!;
    assert.deepEqual([last.type, last.code], ['error', 'SANDBOX_ERROR'], JSON.stringify(last));
    assert.match(last.content, /could not be pulled within 2 s \(docker\.pullTimeoutSeconds\)/);
    assert.match(last.hint, /docker\.pullTimeoutSeconds/);
    assert.ok(!events.some((e) => e.subtype === 'sandbox_created'), 'no sandbox was made');
  });

  test('docker.prepull pulls at start in the background, /health shows each image, and a run joins the pull under way', async () => {
    const image = freshImage('prepull');
    const unreachable = '127.0.0.1:9/sandcaster/never:1'; // the discard port: nothing answers there
    registry.setLayerMs(4000);
    const s = await server(image, { docker: { prepull: [image, unreachable, TEST_IMAGE] } });
    const health = async () => (await (await s.fetch('/health')).json()).prepull as Record<string, string>;
    assert.ok(await waitFor(async () => (await health())?.[image] !== undefined, 5000), 'the prepull is listed');
    assert.equal((await health())[image], 'pending', 'pulling in the background while the server already answers');
    // A run started now waits for the same pull rather than starting its own.
    const events = await timedEvents(await s.query({ prompt: 'say done', model: 'sonnet', timeout: 60 }));
    assert.equal(events.at(-1)!.type, 'result', JSON.stringify(events.at(-1)));
    assert.deepEqual(pullEvents(events).map((e) => e.stage).filter((x) => x !== 'progress'), ['start', 'end']);
    assert.equal(registry.layerRequests(image), 1, 'one download, shared by the prepull and the run');
    assert.ok(await waitFor(async () => (await health())[unreachable] === 'failed', 20_000), `the unreachable image is failed: ${JSON.stringify(await health())}`);
    assert.deepEqual(await health(), { [image]: 'done', [unreachable]: 'failed', [TEST_IMAGE]: 'done' });
    // Once pulled, the next run does not pull.
    const again = await timedEvents(await s.query({ prompt: 'say done', model: 'sonnet', timeout: 60 }));
    assert.equal(again.at(-1)!.type, 'result', JSON.stringify(again.at(-1)));
    assert.deepEqual(pullEvents(again), [], 'no pull for an image that is there');
  });
});
