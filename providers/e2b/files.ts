// File operations in an E2B sandbox through envd: write, bounded read, recursive listing.
import { posix } from 'node:path';
import { SandboxError, type FileEntry } from '../../lib/sandbox.ts';
import { fileError } from './errors.ts';
import { LIST_DEPTH, REQUEST_TIMEOUT_MS, type BoxState } from './shared.ts';

export async function writeFile(box: BoxState, path: string, data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void> {
  const signal = opts?.signal;
  try {
    // envd creates the parent folders and gives the file to the default user.
    await box.sbx.files.write(path, new Blob([new Uint8Array(data)]), { requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw await fileError(box, err, path, 'writing');
  }
}

export async function readFile(box: BoxState, path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<Uint8Array> {
  const max = opts?.maxBytes ?? Infinity;
  const signal = opts?.signal;
  let chunks: Uint8Array[] = [];
  let size = 0;
  try {
    // Streamed so `maxBytes` bounds memory: reading stops as soon as the file proves too large.
    const stream = await box.sbx.files.read(path, { format: 'stream', requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      if (size > max) {
        await reader.cancel().catch(() => undefined);
        chunks = [];
        break;
      }
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw await fileError(box, err, path, 'reading');
  }
  if (size > max) throw new SandboxError('FILE_TOO_LARGE', `${path} is larger than ${max} bytes`);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export async function list(box: BoxState, path: string, opts?: { signal?: AbortSignal }): Promise<FileEntry[]> {
  const signal = opts?.signal;
  try {
    const entries = await box.sbx.files.list(path, { depth: LIST_DEPTH, requestTimeoutMs: REQUEST_TIMEOUT_MS, signal });
    const out: FileEntry[] = [];
    for (const e of entries) {
      const rel = posix.relative(path, e.path);
      if (!rel || rel.startsWith('..')) continue;
      out.push({ path: rel, type: e.type ?? 'other', size: e.size, mtimeMs: e.modifiedTime?.getTime() ?? 0 });
    }
    return out;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw await fileError(box, err, path, 'listing');
  }
}
