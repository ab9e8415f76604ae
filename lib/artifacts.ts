// Artifacts (docs/api.md#artifacts): files under /workspace created or changed during the run, sent as `file`
// events. The baseline is a listing taken once the sandbox is prepared (uploads written); uploads count
// only when their content changed, so they are compared by hash, not by timestamps.
import { createHash } from 'node:crypto';
import { WORKSPACE, type FileEntry, type Sandbox } from './sandbox.ts';
import type { StreamEvent } from './sse.ts';
import type { Upload } from './request.ts';
import { decodeText } from './text.ts';

export const ARTIFACT_LIMITS = { files: 20, fileBytes: 10 * 1024 * 1024, totalBytes: 25 * 1024 * 1024 };

export type Baseline = Map<string, FileEntry>;

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function takeBaseline(sandbox: Sandbox): Promise<Baseline> {
  return new Map((await sandbox.list(WORKSPACE)).map((e) => [e.path, e]));
}

const hidden = (path: string) => path.split('/').some((part) => part.startsWith('.'));

export interface ArtifactResult {
  events: StreamEvent[];
  /** One sentence per file left out, with the reason. */
  leftOut: string[];
}

export async function collectArtifacts(sandbox: Sandbox, baseline: Baseline, uploads: Upload[], limits = ARTIFACT_LIMITS): Promise<ArtifactResult> {
  const uploadHashes = new Map(uploads.map((u) => [u.path, hashBytes(u.bytes)]));
  const candidates = (await sandbox.list(WORKSPACE))
    .filter((e) => e.type === 'file' && !hidden(e.path))
    .filter((e) => {
      if (uploadHashes.has(e.path)) return true; // decided by content below
      const before = baseline.get(e.path);
      return !before || before.size !== e.size || before.mtimeMs !== e.mtimeMs;
    })
    .sort((a, b) => a.path.localeCompare(b.path));

  const events: StreamEvent[] = [];
  const leftOut: string[] = [];
  let total = 0;
  for (const e of candidates) {
    const upHash = uploadHashes.get(e.path);
    // Uploads total at most 10 MiB, so a file over the per-file limit is never an unchanged upload.
    if (e.size > limits.fileBytes) {
      leftOut.push(`${e.path} (${e.size} bytes: over the ${limits.fileBytes}-byte per-file limit)`);
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = await sandbox.readFile(`${WORKSPACE}/${e.path}`, { maxBytes: limits.fileBytes });
    } catch (err) {
      if ((err as { code?: string }).code === 'SANDBOX_LOST' || (err as { code?: string }).code === 'SANDBOX_ERROR') throw err;
      continue; // vanished or became unreadable between listing and reading
    }
    if (upHash && hashBytes(bytes) === upHash) continue;
    if (events.length >= limits.files) {
      leftOut.push(`${e.path} (over the ${limits.files}-file limit)`);
      continue;
    }
    if (total + bytes.length > limits.totalBytes) {
      leftOut.push(`${e.path} (${bytes.length} bytes: over the ${limits.totalBytes}-byte total limit)`);
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
  return { events, leftOut };
}
