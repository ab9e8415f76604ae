// Commands in an E2B sandbox: run with our own deadline, and on timeout or abort kill the command and
// everything it started (found by the SANDCASTER_EXEC_ID tag each command carries in its environment).
import { randomUUID } from 'node:crypto';
import { CommandExitError, type CommandHandle } from 'e2b';
import { WORKSPACE, type ExecOptions, type ExecResult } from '../../lib/sandbox.ts';
import { deadline, onAbort, raceAbort, settledWithin } from '../../lib/abort.ts';
import { guarded } from '../../lib/log.ts';
import { mapError } from './errors.ts';
import { EXEC_TAG, KILL_GRACE_MS, REQUEST_TIMEOUT_MS, type BoxState } from './shared.ts';

export async function exec(box: BoxState, command: string, opts: ExecOptions): Promise<ExecResult> {
  opts.signal?.throwIfAborted();
  const tag = randomUUID();
  const safe = (fn?: (chunk: string) => void) => guarded(fn, 'exec output listener failed', { runId: box.runId });
  let handle: CommandHandle;
  try {
    handle = await raceAbort(
      box.sbx.commands.run(command, {
        background: true,
        cwd: opts.cwd ?? WORKSPACE,
        envs: { [EXEC_TAG]: tag },
        onStdout: safe(opts.onStdout),
        onStderr: safe(opts.onStderr),
        // Our timer governs the command; the SDK's own deadline would only drop the stream, not kill it.
        timeoutMs: 0,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
      }),
      opts.signal,
    );
  } catch (err) {
    if (opts.signal?.aborted) {
      // It may have started anyway: the tag finds it.
      void killTagged(box, tag).catch(() => undefined);
      throw opts.signal.reason;
    }
    throw await mapError(box, err, 'starting a command');
  }

  // A non-zero exit is a result for us, not a failure.
  const exited = handle.wait().then(
    (r) => ({ exitCode: r.exitCode }),
    (err: unknown) => {
      if (err instanceof CommandExitError) return { exitCode: err.exitCode };
      throw err;
    },
  );
  const limit = deadline(opts.timeoutMs, opts.signal);
  const stopped = new Promise<'timeout' | 'abort'>((resolve) => onAbort(limit.signal, () => resolve(opts.signal?.aborted ? 'abort' : 'timeout')));
  try {
    const outcome = await Promise.race([exited, stopped]);
    if (typeof outcome === 'object') {
      // envd reports -1 for a process ended by a signal: it never exited with a code.
      const code = outcome.exitCode;
      return { stdout: handle.stdout, stderr: handle.stderr, exitCode: code >= 0 ? code : null, timedOut: false };
    }
    await kill(box, handle, tag);
    if (outcome === 'abort') {
      // Whoever aborted is done with this command: no need to wait for its last words.
      void handle.disconnect();
      throw opts.signal?.reason;
    }
    // Give the stream a moment to deliver the end (and late output), then stop listening regardless.
    await settledWithin(exited, KILL_GRACE_MS);
    await handle.disconnect();
    return { stdout: handle.stdout, stderr: handle.stderr, exitCode: null, timedOut: true };
  } catch (err) {
    if (opts.signal?.aborted && err === opts.signal.reason) throw err;
    throw await mapError(box, err, 'running a command');
  } finally {
    limit.clear();
    exited.catch(() => undefined);
  }
}

/**
 * Kills the command and everything it started. envd's kill signals only the top process, and
 * process groups are not dependable across envd versions, so every process carrying this exec's
 * tag in its environment is killed (orphaned and backgrounded children included), a few rounds
 * in case something forks meanwhile. Each round first stops every tagged process and only then
 * kills them: killing one by one would let a shell whose child died first run its next command
 * (`sleep 300; rm -rf x` must not reach the `rm` after a timeout).
 */
async function kill(box: BoxState, handle: CommandHandle, tag: string): Promise<void> {
  await Promise.allSettled([
    box.sbx.commands.kill(handle.pid, { requestTimeoutMs: REQUEST_TIMEOUT_MS }),
    killTagged(box, tag),
  ]);
}

async function killTagged(box: BoxState, tag: string): Promise<void> {
  const script =
    'i=0; while [ $i -lt 5 ]; do found=; ' +
    'for p in /proc/[0-9]*; do ' +
    `if tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -qx '${EXEC_TAG}=${tag}'; then ` +
    'kill -STOP "${p#/proc/}" 2>/dev/null && found="$found ${p#/proc/}"; fi; done; ' +
    '[ -z "$found" ] && break; kill -9 $found 2>/dev/null; i=$((i+1)); done; true';
  await box.sbx.commands.run(script, { timeoutMs: 15_000, requestTimeoutMs: REQUEST_TIMEOUT_MS });
}
