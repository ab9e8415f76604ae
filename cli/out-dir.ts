// Writing files a run returned into --out DIR. Their names come from a sandbox: a name that would land
// outside DIR (absolute, `..`, empty segments) is refused, and the last component is never followed if it
// is a symlink.
import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { resolve, sep } from 'node:path';

/** Where `path` goes under `outDir`, or null when it would leave it. */
export function targetIn(outDir: string, path: string): string | null {
  if (typeof path !== 'string' || path === '' || path.includes('\0') || path.startsWith('/')) return null;
  if (sep === '\\' && /[\\:]/.test(path)) return null;
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return null;
  const root = resolve(outDir);
  const target = resolve(root, ...parts);
  return target.startsWith(root + sep) ? target : null;
}

/** Writes `bytes` to `path` under `outDir` (folders created); returns the file written. Throws with a reason. */
export function writeUnder(outDir: string, path: string, bytes: Uint8Array): string {
  const target = targetIn(outDir, path);
  if (!target) throw new Error(`refusing to write ${JSON.stringify(path)}: it would land outside ${outDir}`);
  mkdirSync(resolve(target, '..'), { recursive: true });
  const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0), 0o644);
  try {
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
  } finally {
    closeSync(fd);
  }
  return target;
}

/** The bytes of a `file` event. */
export function fileEventBytes(e: Record<string, unknown>): Buffer {
  const content = typeof e.content === 'string' ? e.content : '';
  return e.encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
}
