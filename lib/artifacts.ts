// Artifacts (docs/api.md#artifacts): files under /workspace created or changed during the run, sent as `file`
// events. The baseline is a listing taken once the sandbox is prepared (uploads written); uploads count
// only when their content changed, so an upload of unchanged size is compared by hash, not by timestamps.
// Everything is decided from the listing (names, sizes, times) before any file is read, so collection costs
// one read per file returned (plus one per upload to compare), never one per file changed or per byte.
import { createHash } from 'node:crypto';
import { WORKSPACE, type FileEntry, type Sandbox } from './sandbox.ts';
import type { StreamEvent } from './sse.ts';
import type { Upload } from './request.ts';
import { decodeText } from './text.ts';

export const ARTIFACT_LIMITS = { files: 20, fileBytes: 10 * 1024 * 1024, totalBytes: 25 * 1024 * 1024 };
/** Files the warning names one by one; the rest are counted. */
const NAMED_LEFT_OUT = 20;

export type Baseline = Map<string, FileEntry>;

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function takeBaseline(sandbox: Sandbox, signal?: AbortSignal): Promise<Baseline> {
  return new Map((await sandbox.list(WORKSPACE, { signal })).map((e) => [e.path, e]));
}

const hidden = (path: string) => path.split('/').some((part) => part.startsWith('.'));

export interface ArtifactResult {
  events: StreamEvent[];
  /** One sentence per file left out, with the reason (the first NAMED_LEFT_OUT, then a count). */
  leftOut: string[];
}

export async function collectArtifacts(
  sandbox: Sandbox,
  baseline: Baseline,
  uploads: Upload[],
  signal?: AbortSignal,
  limits = ARTIFACT_LIMITS,
): Promise<ArtifactResult> {
  const uploaded = new Map(uploads.map((u) => [u.path, u.bytes]));
  const candidates = (await sandbox.list(WORKSPACE, { signal }))
    .filter((e) => e.type === 'file' && !hidden(e.path))
    .filter((e) => {
      const up = uploaded.get(e.path);
      if (up) return true; // changed if its size differs, else decided by content below
      const before = baseline.get(e.path);
      return !before || before.size !== e.size || before.mtimeMs !== e.mtimeMs;
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const events: StreamEvent[] = [];
  const leftOut: string[] = [];
  let leftOutCount = 0;
  const leave = (why: string) => {
    if (leftOutCount++ < NAMED_LEFT_OUT) leftOut.push(why);
  };
  let total = 0;
  // Reads at most one per file that can be returned plus one per upload, even if files vanish meanwhile.
  let reads = limits.files + uploads.length;
  for (const e of candidates) {
    signal?.throwIfAborted();
    const up = uploaded.get(e.path);
    // Uploads total at most 10 MiB, so a file over the per-file limit is never an unchanged upload.
    if (e.size > limits.fileBytes) {
      leave(`${e.path} (${e.size} bytes: over the ${limits.fileBytes}-byte per-file limit)`);
      continue;
    }
    // An upload of another size changed; one of the same size is read once to compare.
    const mustCompare = up !== undefined && e.size === up.length;
    if (!mustCompare) {
      if (events.length >= limits.files) {
        leave(`${e.path} (over the ${limits.files}-file limit)`);
        continue;
      }
      if (total + e.size > limits.totalBytes) {
        leave(`${e.path} (${e.size} bytes: over the ${limits.totalBytes}-byte total limit)`);
        continue;
      }
    }
    if (reads-- <= 0) {
      leave(`${e.path} (not read: ${limits.files + uploads.length} files were read already)`);
      continue;
    }
    const bytes = await read(sandbox, e, mustCompare ? limits.fileBytes : Math.min(limits.fileBytes, limits.totalBytes - total), signal);
    if (bytes === null) continue; // vanished or became unreadable between listing and reading
    if (bytes === 'too large') {
      leave(`${e.path} (grew past the limits after it was listed)`);
      continue;
    }
    if (mustCompare && Buffer.compare(bytes, up!) === 0) continue;
    if (events.length >= limits.files) {
      leave(`${e.path} (over the ${limits.files}-file limit)`);
      continue;
    }
    if (total + bytes.length > limits.totalBytes) {
      leave(`${e.path} (${bytes.length} bytes: over the ${limits.totalBytes}-byte total limit)`);
      continue;
    }
    total += bytes.length;
    const text = decodeText(bytes);
    events.push({
      type: 'file',
      path: e.path,
      size: bytes.length,
      encoding: text === null ? 'base64' : 'utf8',
      content: text ?? Buffer.from(bytes).toString('base64'),
    });
  }
  if (leftOutCount > NAMED_LEFT_OUT) leftOut.push(`and ${leftOutCount - NAMED_LEFT_OUT} more files`);
  return { events, leftOut };
}

/** The file's bytes (at most maxBytes), null when it is gone, 'too large' past maxBytes. */
async function read(sandbox: Sandbox, e: FileEntry, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array | null | 'too large'> {
  try {
    return await sandbox.readFile(`${WORKSPACE}/${e.path}`, { maxBytes, signal });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SANDBOX_LOST' || code === 'SANDBOX_ERROR') throw err;
    if (code === 'FILE_TOO_LARGE') return 'too large';
    if (signal?.aborted) throw err;
    return null;
  }
}
