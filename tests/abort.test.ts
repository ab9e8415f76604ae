// The abort toolkit (lib/abort.ts) and the guarded callback (lib/log.ts): what each rejects with, and that
// none leaves a listener on a long-lived signal once it settles. Pure: no server, no Docker.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { deadline, onAbort, raceAbort, RunAbort, settledWithin, sleep } from '../lib/abort.ts';
import { guarded, setLogSink } from '../lib/log.ts';

const listeners = (s: AbortSignal) => getEventListeners(s, 'abort').length;
const never = () => new Promise<never>(() => {});

describe('sleep', () => {
  test('resolves without a signal, and leaves no listener on one that never aborts', async () => {
    const run = new AbortController();
    await sleep(1);
    await sleep(1, run.signal);
    assert.equal(listeners(run.signal), 0, 'the run signal keeps no listener after the sleep');
  });

  test("rejects with the signal's reason, at once when it has already aborted", async () => {
    const reason = new RunAbort('CANCELLED', 'stop');
    await assert.rejects(sleep(60_000, AbortSignal.abort(reason)), (e) => e === reason);
    const run = new AbortController();
    const napping = sleep(60_000, run.signal);
    run.abort(reason);
    await assert.rejects(napping, (e) => e === reason);
  });
});

describe('settledWithin', () => {
  test('true when the promise settles (also by rejecting), false when the time is up first', async () => {
    assert.equal(await settledWithin(Promise.resolve(1), 60_000), true);
    assert.equal(await settledWithin(Promise.reject(new Error('x')), 60_000), true);
    assert.equal(await settledWithin(never(), 1), false);
  });
});

describe('raceAbort', () => {
  test('settles with the work when the signal stays quiet, and removes its listener', async () => {
    const run = new AbortController();
    assert.equal(await raceAbort(Promise.resolve('done'), run.signal), 'done');
    await assert.rejects(raceAbort(Promise.reject(new Error('boom')), run.signal), /boom/);
    assert.equal(listeners(run.signal), 0, 'the run signal keeps no listener after either race');
  });

  test("rejects with the signal's reason while the work ignores the signal", async () => {
    const run = new AbortController();
    const reason = new RunAbort('TIMEOUT', 'too long');
    const racing = raceAbort(never(), run.signal);
    run.abort(reason);
    await assert.rejects(racing, (e) => e === reason);
  });

  test("an SDK's own abort error is replaced by the signal's reason", async () => {
    const run = new AbortController();
    const reason = new RunAbort('CANCELLED', 'cancelled by the client');
    const racing = raceAbort(async () => {
      run.abort(reason);
      throw new Error('Request was aborted.'); // what an SDK says when it noticed first
    }, run.signal);
    await assert.rejects(racing, (e) => e === reason);
  });

  test('a function is not started once the signal has aborted', async () => {
    let started = false;
    const reason = new Error('gone');
    await assert.rejects(
      raceAbort(async () => void (started = true), AbortSignal.abort(reason)),
      (e) => e === reason,
    );
    assert.equal(started, false, 'the work was never started');
  });
});

describe('deadline', () => {
  test("time up: aborts with the given reason; the parent's listener is gone", async () => {
    const run = new AbortController();
    const reason = new Error('the engine did not answer');
    const limit = deadline(1, run.signal, () => reason);
    await new Promise((r) => onAbort(limit.signal, () => r(undefined)));
    assert.equal(limit.signal.reason, reason);
    assert.equal(listeners(run.signal), 0, 'the run signal keeps no listener once the time is up');
    limit.clear();
  });

  test('without a reason, a TimeoutError as AbortSignal.timeout gives', async () => {
    const limit = deadline(1);
    await new Promise((r) => onAbort(limit.signal, () => r(undefined)));
    assert.equal((limit.signal.reason as DOMException).name, 'TimeoutError');
  });

  test("the parent's abort passes through with the parent's reason, also when it came before", () => {
    const run = new AbortController();
    const limit = deadline(60_000, run.signal);
    const reason = new RunAbort('SHUTDOWN', 'shutting down');
    run.abort(reason);
    assert.equal(limit.signal.reason, reason);
    limit.clear();
    const late = deadline(60_000, run.signal);
    assert.equal(late.signal.reason, reason, 'a parent already aborted aborts the new limit at once');
    late.clear();
  });

  test('clear() removes the listener on the parent: thousands of calls under one run signal leave none', () => {
    const run = new AbortController();
    for (let i = 0; i < 5000; i++) deadline(60_000, run.signal).clear();
    assert.equal(listeners(run.signal), 0, 'the run signal keeps no listener after 5000 cleared limits');
  });
});

describe('guarded', () => {
  test('a throwing callback is logged with the fields and goes no further; a missing one is a no-op', () => {
    const lines: string[] = [];
    setLogSink((l) => lines.push(l));
    try {
      const seen: string[] = [];
      guarded((s: string) => void seen.push(s), 'listener failed')('a');
      assert.deepEqual(seen, ['a']);
      guarded(() => {
        throw new Error('listener bug');
      }, 'listener failed', { runId: 'run_1' })();
      guarded(undefined, 'listener failed')();
    } finally {
      setLogSink(null);
    }
    assert.equal(lines.length, 1, `one warning, got: ${lines.join('')}`);
    const line = JSON.parse(lines[0]!);
    assert.deepEqual([line.level, line.msg, line.runId, line.error], ['warn', 'listener failed', 'run_1', 'listener bug']);
  });
});
