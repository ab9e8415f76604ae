// Commands in a sandbox through `docker exec`, under a wrapper that makes them killable: exec cannot be
// killed through the API, so the wrapper reports the command's pid, and a timeout, an abort or a caller
// that has seen enough output kills the command's whole process group from a second exec.
import { posix } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import { deadline, onAbort, settledWithin, sleep } from '../../lib/abort.ts';
import { guarded, log } from '../../lib/log.ts';
import { SandboxError, WORKSPACE, type ExecOptions, type ExecResult } from '../../lib/sandbox.ts';
import type { Engine } from './engine.ts';

/** Characters of output kept per stream at the start and at the end; the middle of a flood is dropped. */
const OUTPUT_KEEP = 1 << 20;
/** How often a running command checks that its sandbox is still there. */
const LIVENESS_MS = 2000;

/**
 * Prints its pid as the first stdout line, then becomes the command (`$1`, given the positional parameters
 * after `$2` when there are any). The engine starts each exec as a session and process-group leader
 * (measured: pid = pgid = sid), so `kill -9 -<pid>` later ends the command and every child it forked. It
 * changes to the working directory (`$2`) itself: with the API's WorkingDir a missing folder is a bare exit
 * code 126, while `cd` says what is wrong on stderr.
 */
export const WRAPPER = 'echo $$; cd "$2" || exit; c=$1; shift 2; [ $# -eq 0 ] && exec /bin/sh -c "$c"; exec /bin/sh -c "$c" sh "$@"';

/** One sandbox container as the exec machinery needs it. */
export interface Target {
  engine: Engine;
  container: Docker.Container;
  /** Container name, for logs. */
  name: string;
  /** "uid:gid" every command runs as. */
  user: string;
}

export interface RunOptions {
  /** Script for `sh -c`, and its positional parameters ($1, $2, ...). */
  script: string;
  args?: string[];
  cwd: string;
  /** Bytes for the command's stdin, which then sees end-of-file; without it stdin is not attached. */
  stdin?: Uint8Array;
  timeoutMs: number;
  /** Aborting kills the command and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Raw output as it comes; returning true stops the command (its group is killed, the outcome is 'stopped'). */
  onStdout?(b: Buffer): boolean | void;
  onStderr?(b: Buffer): boolean | void;
}

export interface RunOutcome {
  how: 'done' | 'timeout' | 'stopped';
  /** null when the command was killed before it reported an exit code. */
  exitCode: number | null;
}

type HijackedStream = NodeJS.ReadWriteStream & { destroy(): void };

/** Runs one command under the wrapper and waits until it ended, was killed, or the caller stopped it. */
export async function runProcess(t: Target, o: RunOptions): Promise<RunOutcome> {
  const { engine, container } = t;
  const call = engine.call;
  o.signal?.throwIfAborted();
  const exec = await call('exec', (s) =>
    container.exec({
      Cmd: ['/bin/sh', '-c', WRAPPER, 'sandcaster', o.script, o.cwd, ...(o.args ?? [])],
      AttachStdin: o.stdin !== undefined,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      User: t.user,
      abortSignal: s,
    }),
    { signal: o.signal }, // aborted here, nothing has run yet; once started, an abort kills the command below
  );
  const stream = (await call('exec', (s) => exec.start({ hijack: true, stdin: o.stdin !== undefined, abortSignal: s }))) as HijackedStream;

  let stop: (() => void) | undefined;
  let pid: number | undefined;
  let pidKnown!: () => void;
  const pidLine = new Promise<void>((r) => (pidKnown = r));
  let first = Buffer.alloc(0); // stdout bytes until the wrapper's pid line is complete
  const deliver = (cb: RunOptions['onStdout'], b: Buffer) => {
    if (b.length && cb?.(b) === true) stop?.();
  };
  const onStdoutBytes = (b: Buffer): boolean => {
    if (pid === undefined) {
      first = Buffer.concat([first, b]);
      const nl = first.indexOf(10);
      if (nl < 0) return true;
      pid = Number(first.subarray(0, nl).toString('latin1')) || 0;
      pidKnown();
      b = first.subarray(nl + 1);
    }
    deliver(o.onStdout, b);
    return true;
  };
  // demuxStream only ever calls write(); plain objects stand in for writable streams.
  const sink = (write: (b: Buffer) => boolean) => ({ write }) as unknown as NodeJS.WritableStream;
  engine.docker.modem.demuxStream(stream, sink(onStdoutBytes), sink((b) => (deliver(o.onStderr, b), true)));
  const ended = endOf(stream);
  if (o.stdin !== undefined) {
    // The command may end before reading it all (a failed mkdir): a write error then is not ours to report.
    stream.on('error', () => {});
    stream.write(Buffer.from(o.stdin.buffer, o.stdin.byteOffset, o.stdin.byteLength));
    stream.end(); // half-close: the engine closes the command's stdin (seen on engine 20.10)
  }

  let lost: SandboxError | undefined;
  const limit = deadline(o.timeoutMs, o.signal);
  const how = await new Promise<'done' | 'timeout' | 'abort' | 'stopped' | 'lost'>((resolve) => {
    const finish = (h: 'done' | 'timeout' | 'abort' | 'stopped' | 'lost') => {
      limit.clear();
      clearInterval(watch);
      resolve(h);
    };
    // A sandbox that dies (gVisor ends the whole sandbox past its memory or pids limit) can leave the exec's
    // stream open forever: a command that runs a while checks that its container still runs.
    let looking = false;
    const watch = setInterval(() => {
      if (looking) return;
      looking = true;
      void stillRunning(t).then((err) => {
        looking = false;
        if (err) (lost = err), finish('lost');
      });
    }, LIVENESS_MS);
    stop = () => finish('stopped');
    onAbort(limit.signal, () => finish(o.signal?.aborted ? 'abort' : 'timeout'));
    void ended.then(() => finish('done'));
  });

  if (how === 'done') {
    if (pid === undefined) deliver(o.onStdout, first); // never saw the pid line (the exec failed to start): pass on what came
    stream.destroy(); // a hijacked connection stays half-open after the output ends
    const info = await finished(t, exec);
    if (info.ExitCode === null || info.ExitCode === 137) await assertRunning(t); // killed with its container?
    return { how, exitCode: info.ExitCode };
  }

  if (how === 'lost') {
    stream.destroy();
    throw lost!;
  }

  stop = undefined;
  try {
    // Stopped before the pid line came (an exec can take seconds to start under gVisor): wait for it, or for
    // the end of the output (then there is nothing left to kill), within the engine bound.
    if (pid === undefined) await settledWithin(Promise.race([pidLine, ended]), engine.timeoutMs);
    await killGroup(t, pid, exec);
    if (how === 'timeout') await settledWithin(ended, 500); // let the last output in
  } catch (e) {
    if (how === 'timeout') throw e;
  } finally {
    stream.destroy();
  }
  if (how === 'abort') throw o.signal!.reason;
  return { how, exitCode: null };
}

/** Resolves when the stream ends, closes or fails. */
function endOf(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

/** Exec exit code; the stream can close a moment before the engine records the exit. */
async function finished(t: Target, exec: Docker.Exec): Promise<Docker.ExecInspectInfo> {
  for (let i = 0; ; i++) {
    const info = await t.engine.call('exec', (s) => exec.inspect({ abortSignal: s }));
    if (!info.Running || i >= 40) return info;
    await sleep(25);
  }
}

/** The SANDBOX_LOST error when the container no longer runs; undefined while it runs or the engine does not say. */
async function stillRunning(t: Target): Promise<SandboxError | undefined> {
  try {
    const info = await t.engine.call('inspect container', (s) => t.container.inspect({ abortSignal: s }));
    if (!info.State.Running) return new SandboxError('SANDBOX_LOST', `the sandbox container stopped (${info.State.Status}, exit code ${info.State.ExitCode})`);
  } catch (err) {
    if (err instanceof SandboxError && err.code === 'SANDBOX_LOST') return err;
  }
  return undefined;
}

/**
 * After a SIGKILL-like end: was it the command (OOM, kill) or the whole container? The exec's output ends a
 * moment before the engine marks a killed container as stopped, so look a few times before trusting "running".
 */
async function assertRunning(t: Target): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const info = await t.engine.call('inspect container', (s) => t.container.inspect({ abortSignal: s }));
    if (!info.State.Running) throw new SandboxError('SANDBOX_LOST', `the sandbox container stopped (${info.State.Status}, exit code ${info.State.ExitCode})`);
    await sleep(40);
  }
}

/** Kills the command's whole process group from a second exec, then waits until the engine agrees it ended. */
async function killGroup(t: Target, pid: number | undefined, exec: Docker.Exec): Promise<void> {
  const call = t.engine.call;
  if (pid) {
    const kill = await call('exec', (s) =>
      t.container.exec({ Cmd: ['/bin/sh', '-c', 'kill -9 -"$1" "$1" 2>/dev/null; true', 'sandcaster', String(pid)], User: t.user, AttachStdout: true, AttachStderr: true, abortSignal: s }),
    );
    const ks = (await call('exec', (s) => kill.start({ hijack: true, stdin: false, abortSignal: s }))) as HijackedStream;
    ks.resume();
    await settledWithin(endOf(ks), t.engine.timeoutMs);
    ks.destroy();
  }
  const info = await finished(t, exec);
  if (info.Running) log.warn('docker exec still running after its process group was killed', { container: t.name, pid });
}

/** Keeps the head and the tail of a stream's text so a command that floods output cannot exhaust memory. */
function collector() {
  let head = '';
  let tail = '';
  let omitted = 0;
  return {
    add(s: string) {
      if (head.length < OUTPUT_KEEP) {
        const n = OUTPUT_KEEP - head.length;
        head += s.slice(0, n);
        s = s.slice(n);
      }
      tail += s;
      if (tail.length > 2 * OUTPUT_KEEP) {
        omitted += tail.length - OUTPUT_KEEP;
        tail = tail.slice(-OUTPUT_KEEP);
      }
    },
    text: () => (omitted ? `${head}\n[... ${omitted} characters omitted ...]\n${tail}` : head + tail),
  };
}

/** A shell command as the agent's `bash` tool runs it: text output streamed to the callbacks, head and tail kept. */
export async function execCommand(t: Target, command: string, o: ExecOptions): Promise<ExecResult> {
  const out = collector();
  const err = collector();
  const outText = new StringDecoder('utf8');
  const errText = new StringDecoder('utf8');
  const onStdout = guarded(o.onStdout, 'exec output listener failed', { container: t.name });
  const onStderr = guarded(o.onStderr, 'exec output listener failed', { container: t.name });
  const emitOut = (s: string) => s && (out.add(s), onStdout(s));
  const emitErr = (s: string) => s && (err.add(s), onStderr(s));
  const r = await runProcess(t, {
    script: command,
    cwd: posix.resolve(WORKSPACE, o.cwd ?? WORKSPACE),
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    onStdout: (b) => void emitOut(outText.write(b)),
    onStderr: (b) => void emitErr(errText.write(b)),
  });
  emitOut(outText.end());
  emitErr(errText.end());
  return { stdout: out.text(), stderr: err.text(), exitCode: r.exitCode, timedOut: r.how === 'timeout' };
}
