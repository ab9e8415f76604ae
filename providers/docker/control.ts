// The sandbox's keep-alive process doubles as a listing service on its own stdin/stdout, so the artifact
// listing at the end of a run costs one write and one read on a connection opened at create time (about
// 2.5 ms here) instead of an exec (about 50 ms: the engine sets up a new process in the container each time;
// docs/operations.md#what-a-sandbox-costs).
//
// The keep-alive runs as the sandbox user, as an exec listing would, and what it prints is read as the same
// hostile text: a process in the sandbox can write into its stdin or forge its output, which gains it nothing
// it could not get by creating files (entries are bounded, and every file is then read through exec with the
// sandbox user's rights). Whenever the channel cannot answer (it never opened, its answer is late, too large
// or unexpected), the caller lists through exec as before, so the channel only ever saves time.
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { onAbort } from '../../lib/abort.ts';
import { log } from '../../lib/log.ts';
import { WORKSPACE, type FileEntry } from '../../lib/sandbox.ts';
import type { Target } from './exec.ts';
import { entryOf, LIST_FIND, LIST_LIMITS, listingUsable } from './files.ts';

/** A channel answer later than this is given up on (the caller then lists through exec, with its own bound). */
export const CONTROL_TIMEOUT_MS = 10_000;
const END = 'sandcaster-end';

/**
 * The container's command: waits on stdin like the old `read _` keep-alive (busybox-only images may lack
 * `sleep`), and answers each line holding a nonce with a listing of /workspace (the find+stat of files.ts)
 * whose every line the shell itself prefixes with the nonce, then `<nonce> rc <exit code>` and
 * `sandcaster-end <nonce>`. The nonce only ever lives in this shell's memory (printf is a builtin; no child
 * gets it in its argv), so lines written into this process's output by anything else in the sandbox, or
 * answers to requests it wrote into its stdin, are told apart and dropped. Stdin reaching its end still
 * ends the container.
 */
export const KEEPALIVE = [
  '/bin/sh',
  '-c',
  `while IFS= read -r n; do case $n in ''|*[!0-9a-f]*) continue;; esac; ` +
    `{ (cd ${WORKSPACE} && exec ${LIST_FIND}) </dev/null 2>/dev/null; echo "rc $?"; } | ` +
    `while IFS= read -r l; do printf '%s %s\n' "$n" "$l"; done; printf '${END} %s\n' "$n"; done`,
];

type Hijacked = NodeJS.ReadWriteStream & { destroy(): void };

interface Pending {
  nonce: string;
  entries: FileEntry[];
  bytes: number;
  exitCode?: string;
  done(entries: FileEntry[] | undefined): void;
}

export class ControlChannel {
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private partial = '';
  private text = new StringDecoder('utf8');
  private broken = false;

  private constructor(
    private readonly stream: Hijacked,
    private readonly name: string,
  ) {
    this.stream.on('error', () => this.close());
    this.stream.on('close', () => this.close());
  }

  /** Attaches to the container's stdin and output; undefined (and logged) when the engine refuses. Call before or beside start. */
  static async open(t: Target): Promise<ControlChannel | undefined> {
    try {
      const stream = (await t.engine.call('attach', (s) =>
        t.container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true, abortSignal: s } as Parameters<typeof t.container.attach>[0]),
      )) as Hijacked;
      const channel = new ControlChannel(stream, t.name);
      // demuxStream only ever calls write(); plain objects stand in for writable streams. stderr is dropped.
      const sink = (write: (b: Buffer) => boolean) => ({ write }) as unknown as NodeJS.WritableStream;
      t.engine.docker.modem.demuxStream(stream, sink((b) => (channel.onOutput(b), true)), sink(() => true));
      return channel;
    } catch (err) {
      log.debug('docker sandbox control channel not available; listings use exec', { container: t.name, error: err });
      return undefined;
    }
  }

  /**
   * Everything under /workspace, as files.ts `list` returns it; undefined when the channel cannot answer, in
   * which case the caller lists through exec. Requests go one at a time.
   */
  list(signal?: AbortSignal): Promise<FileEntry[] | undefined> {
    const run = this.queue.then(() => this.ask(signal));
    this.queue = run.catch(() => {});
    return run;
  }

  close(): void {
    if (this.broken) return;
    this.broken = true;
    this.finish(undefined);
    this.stream.destroy();
  }

  private ask(signal?: AbortSignal): Promise<FileEntry[] | undefined> {
    if (this.broken) return Promise.resolve(undefined);
    signal?.throwIfAborted();
    return new Promise<FileEntry[] | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        log.warn('docker sandbox control channel did not answer; listing through exec', { container: this.name });
        this.close(); // a late answer would be read as the next one's: never use this channel again
      }, CONTROL_TIMEOUT_MS);
      const off = onAbort(signal, () => {
        reject(signal!.reason);
        this.close();
      });
      this.pending = {
        nonce: randomBytes(8).toString('hex'),
        entries: [],
        bytes: 0,
        done: (entries) => {
          clearTimeout(timer);
          off();
          resolve(entries);
        },
      };
      // Whatever came between requests is gone; each answer is read from a clean start.
      this.partial = '';
      this.text = new StringDecoder('utf8');
      this.stream.write(`${this.pending.nonce}\n`);
    });
  }

  private finish(entries: FileEntry[] | undefined): void {
    const p = this.pending;
    this.pending = undefined;
    p?.done(entries);
  }

  /** Output with no request waiting (written by something in the sandbox) is dropped, never buffered. */
  private onOutput(b: Buffer): void {
    const p = this.pending;
    if (!p || this.broken) return;
    p.bytes += b.length;
    const lines = (this.partial + this.text.write(b)).split('\n');
    this.partial = lines.pop()!;
    const mine = `${p.nonce} `;
    for (const line of lines) {
      if (line === `${END} ${p.nonce}`) {
        // Anything but a usable listing (no stat, no /workspace) is left to the exec listing, which says what is wrong.
        this.finish(p.exitCode !== undefined && listingUsable(Number(p.exitCode)) ? p.entries : undefined);
        return;
      }
      if (!line.startsWith(mine)) continue; // not ours
      const body = line.slice(mine.length);
      if (body.startsWith('rc ')) p.exitCode = body.slice(3);
      else {
        const e = entryOf(body);
        if (e) p.entries.push(e);
      }
    }
    // Too much for one answer: a listing that large, or something in the sandbox writing into our output. The
    // exec listing is authoritative about its own output and cuts a large one short itself.
    if (p.entries.length >= LIST_LIMITS.entries || p.bytes >= LIST_LIMITS.bytes) this.close();
  }
}
