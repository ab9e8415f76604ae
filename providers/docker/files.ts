// File operations inside a sandbox, run as the sandbox user through exec, so they have exactly the rights a
// `bash` command has: what that user cannot write is a permission error, never a write made by the engine
// as root; files they create are theirs. Each one is a single exec under the kill wrapper (exec.ts), bounded
// in time and bytes, and stopped when the run's signal aborts.
//
// What the image needs (busybox or coreutils both do): writeFile `mkdir` and `cat`, readFile `cat`, list
// `find` (with -mindepth, -prune and `-exec {} +`) and `stat` (with -c). Without them the operation is a
// FILE_ERROR tool error naming the missing utility; nothing falls back to a write as root. Only the server's
// own uploads, placed before the agent starts, go through the archive API (`place`).
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { log } from '../../lib/log.ts';
import { SandboxError, WORKSPACE, type FileEntry, type PlacedFile } from '../../lib/sandbox.ts';
import { packTar, type TarWriteEntry } from '../../lib/tar.ts';
import { engineMessage, TRANSFER_TIMEOUT_MS } from './engine.ts';
import { runProcess, type Target } from './exec.ts';

/** Bound on one file operation. */
export const FILE_OP_TIMEOUT_MS = 60_000;
/** readFile without maxBytes still stops here. */
export const DEFAULT_READ_LIMIT = 64 * 1024 * 1024;
/** A listing stops (and returns what it has) after this many entries or this much output. */
export const LIST_LIMITS = { entries: 10_000, bytes: 4 * 1024 * 1024 };
/** stderr kept for error messages. */
const STDERR_KEEP = 4096;

// Exit codes of our own scripts, above what the utilities use.
const IS_DIR = 81;
const NOT_REGULAR = 82;
const MISSING = 83;
const NOT_DIR = 84;
const CANNOT_ENTER = 85;

/** $1 = file. A folder or a device/fifo is refused before `cat` could block on it or read without end. */
const READ_SCRIPT = `[ -d "$1" ] && exit ${IS_DIR}; if [ -e "$1" ] && [ ! -f "$1" ]; then exit ${NOT_REGULAR}; fi; exec cat "$1"`;
/** $1 = file; the bytes come on stdin. A fifo or device is refused: `cat >` could block on it for good. */
const WRITE_SCRIPT =
  `[ -d "$1" ] && exit ${IS_DIR}; if [ -e "$1" ] && [ ! -f "$1" ]; then exit ${NOT_REGULAR}; fi; ` +
  `d=\${1%/*}; mkdir -p "\${d:-/}" || exit; exec cat > "$1"`;
/**
 * $1 = folder. One line per entry: mode (hex), size, mtime (s), "./name". Names holding a newline could not be
 * told apart from the next line, so they (and whatever is under such a folder) are left out; the agent still
 * sees them with `bash`. Tested before `cd`, because dash's `cd` does not say why it failed.
 */
/** The listing itself, run in the listed folder: also what the keep-alive answers with (control.ts). */
export const LIST_FIND = `find . -mindepth 1 -name '*\n*' -prune -o -exec stat -c '%f %s %Y %n' {} +`;
/** find exits 1 when some folder inside could not be read or vanished: what it could list is the answer. */
export const listingUsable = (exitCode: number | null) => exitCode === 0 || exitCode === 1;
const LIST_SCRIPT =
  `[ -e "$1" ] || exit ${MISSING}; [ -d "$1" ] || exit ${NOT_DIR}; cd "$1" || exit ${CANNOT_ENTER}; ` +
  `command -v stat >/dev/null || { echo 'stat: not found' >&2; exit 127; }; ` +
  `exec ${LIST_FIND}`;

/** Absolute, normalised, without a trailing slash. */
export function absolute(path: string): string {
  return posix.resolve(WORKSPACE, path);
}

function stderrKeeper() {
  let kept = Buffer.alloc(0);
  return {
    add: (b: Buffer) => void (kept.length < STDERR_KEEP && (kept = Buffer.concat([kept, b]).subarray(0, STDERR_KEEP))),
    text: () => kept.toString('utf8').trim(),
  };
}

/**
 * A failed operation inside a live sandbox, from its exit code and the utility's message (strerror texts are
 * the same in busybox, coreutils, dash and bash). Every result is a tool-level code, never SANDBOX_ERROR.
 */
export function fileFailure(op: 'read' | 'write' | 'list', path: string, exitCode: number | null, stderr: string, tools: string): SandboxError {
  const said = stderr ? ` (${stderr.slice(0, 500)})` : '';
  if (exitCode === IS_DIR) return new SandboxError('IS_A_DIRECTORY', `${path} is a directory`);
  if (exitCode === NOT_REGULAR) return new SandboxError('FILE_NOT_FOUND', `${path} is not a regular file`);
  if (exitCode === MISSING) return new SandboxError('FILE_NOT_FOUND', `${path}: no such directory`);
  if (exitCode === NOT_DIR) return new SandboxError('FILE_NOT_FOUND', `${path} is not a directory`);
  if (exitCode === CANNOT_ENTER) return new SandboxError('PERMISSION_DENIED', `${path}: permission denied (the sandbox user cannot enter it)`);
  if (exitCode === 127 || /\bnot found\b/i.test(stderr)) {
    return new SandboxError('FILE_ERROR', `${op} ${path}: the sandbox image lacks a utility this needs (${tools}, from busybox or coreutils)${said}`);
  }
  if (/no space left on device|disk quota exceeded/i.test(stderr)) return new SandboxError('NO_SPACE', `${path}: no space left in the sandbox${said}`);
  if (/read-only file system/i.test(stderr)) return new SandboxError('PERMISSION_DENIED', `${path}: read-only file system; files can be written under ${WORKSPACE} and /tmp`);
  if (/permission denied|operation not permitted/i.test(stderr)) return new SandboxError('PERMISSION_DENIED', `${path}: permission denied for the sandbox user${said}`);
  if (/is a directory/i.test(stderr)) return new SandboxError('IS_A_DIRECTORY', `${path} is a directory`);
  if (/not a directory|file exists/i.test(stderr)) return new SandboxError('FILE_NOT_FOUND', `${path}: a parent of it is not a directory`);
  if (/no such file/i.test(stderr)) return new SandboxError('FILE_NOT_FOUND', `${path}: no such file or directory`);
  return new SandboxError('FILE_ERROR', `${op} ${path} failed${exitCode === null ? ' (the process was killed)' : ` with exit code ${exitCode}`}${said}`);
}

const timedOut = (op: string, path: string) => new SandboxError('FILE_ERROR', `${op} ${path} did not finish within ${FILE_OP_TIMEOUT_MS / 1000}s`);

export async function writeFile(t: Target, path: string, data: Uint8Array, signal?: AbortSignal): Promise<void> {
  path = absolute(path);
  if (path === '/') throw new SandboxError('IS_A_DIRECTORY', '/ is a directory');
  const err = stderrKeeper();
  const r = await runProcess(t, { script: WRITE_SCRIPT, args: [path], cwd: '/', stdin: data, timeoutMs: FILE_OP_TIMEOUT_MS, signal, onStderr: err.add });
  if (r.how === 'timeout') throw timedOut('write', path);
  if (r.exitCode !== 0) throw fileFailure('write', path, r.exitCode, err.text(), 'mkdir and cat');
}

export async function readFile(t: Target, path: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<Uint8Array> {
  path = absolute(path);
  const max = opts.maxBytes ?? DEFAULT_READ_LIMIT;
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const err = stderrKeeper();
  const r = await runProcess(t, {
    script: READ_SCRIPT,
    args: [path],
    cwd: '/',
    timeoutMs: FILE_OP_TIMEOUT_MS,
    signal: opts.signal,
    onStdout: (b) => {
      if (tooLarge) return true;
      size += b.length;
      if (size > max) return (tooLarge = true); // stop here: a sparse terabyte costs maxBytes, not a terabyte
      chunks.push(b);
    },
    onStderr: err.add,
  });
  if (tooLarge) throw new SandboxError('FILE_TOO_LARGE', `${path} is too large (more than ${max} bytes)`);
  if (r.how === 'timeout') throw timedOut('read', path);
  if (r.exitCode !== 0) throw fileFailure('read', path, r.exitCode, err.text(), 'cat');
  return new Uint8Array(Buffer.concat(chunks));
}

const ENTRY = /^([0-9a-f]+) (\d+) (-?\d+) \.\/(.+)$/;

/** One line of the listing's `stat -c '%f %s %Y %n'` output; undefined when it is not one. */
export function entryOf(line: string): FileEntry | undefined {
  const m = ENTRY.exec(line);
  if (!m) return undefined;
  // find never prints an empty, `.` or `..` segment; the line is text from the sandbox, so such a path is refused.
  if (m[4]!.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return undefined;
  const format = parseInt(m[1]!, 16) & 0o170000;
  const type = format === 0o100000 ? 'file' : format === 0o040000 ? 'dir' : format === 0o120000 ? 'symlink' : 'other';
  return { path: m[4]!, type, size: type === 'file' ? Number(m[2]) : 0, mtimeMs: Number(m[3]) * 1000 };
}

export async function list(t: Target, path: string, signal?: AbortSignal): Promise<FileEntry[]> {
  path = absolute(path);
  const entries: FileEntry[] = [];
  let bytes = 0;
  let partial = '';
  let full = false;
  const text = new StringDecoder('utf8'); // a name's UTF-8 may be split across chunks
  const err = stderrKeeper();
  const r = await runProcess(t, {
    script: LIST_SCRIPT,
    args: [path],
    cwd: '/',
    timeoutMs: FILE_OP_TIMEOUT_MS,
    signal,
    onStdout: (b) => {
      if (full) return true;
      bytes += b.length;
      const lines = (partial + text.write(b)).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const e = entryOf(line);
        if (e) entries.push(e);
        if (entries.length >= LIST_LIMITS.entries) break;
      }
      if (entries.length >= LIST_LIMITS.entries || bytes >= LIST_LIMITS.bytes) return (full = true);
    },
    onStderr: err.add,
  });
  if (full) {
    log.warn('docker sandbox listing cut short', { container: t.name, path, entries: entries.length, bytes });
    return entries.slice(0, LIST_LIMITS.entries);
  }
  if (r.how === 'timeout') throw timedOut('list', path);
  if (listingUsable(r.exitCode)) return entries;
  throw fileFailure('list', path, r.exitCode, err.text(), 'find and stat');
}

/**
 * The server's uploads, before the agent starts: one archive upload into the fresh workspace, owner set in the
 * tar headers (folders too; left out, the engine would create them owned by root). Trusted paths only: no
 * agent has run yet, so nothing in the workspace (a symlink) can redirect the engine's root write.
 */
export async function place(t: Target, files: PlacedFile[], owner: { uid: number; gid: number }, signal?: AbortSignal): Promise<void> {
  if (files.length === 0) return;
  const dirs = new Set<string>();
  const entries: TarWriteEntry[] = [];
  for (const f of files) {
    const rel = posix.relative(WORKSPACE, absolute(f.path));
    if (!rel || rel.startsWith('..')) throw new SandboxError('FILE_ERROR', `${f.path} is not under ${WORKSPACE}`);
    for (let d = posix.dirname(rel); d !== '.' && !dirs.has(d); d = posix.dirname(d)) dirs.add(d);
    entries.push({ name: rel, type: 'file', mode: 0o644, ...owner, data: f.data });
  }
  const folders = [...dirs].sort().map((name): TarWriteEntry => ({ name, type: 'dir', mode: 0o755, ...owner }));
  try {
    await t.engine.call(
      'upload files',
      // noOverwriteDirNonDir: without it the engine would delete a whole folder to put a file in its place.
      (s) => t.container.putArchive(Readable.from(packTar([...folders, ...entries])), { path: WORKSPACE, noOverwriteDirNonDir: true, abortSignal: s }),
      { ms: TRANSFER_TIMEOUT_MS, signal },
    );
  } catch (err) {
    if (err instanceof SandboxError && err.code === 'SANDBOX_ERROR' && !err.hint && /no space left/i.test(engineMessage(err.cause))) {
      throw new SandboxError('NO_SPACE', `the uploads do not fit in the sandbox's ${WORKSPACE}`, undefined, { cause: err.cause });
    }
    throw err;
  }
}
