// Header values for downloading a returned file: its Content-Type from the extension, a Content-Disposition
// whose file name can never break out of the header, and If-None-Match against the file's ETag.
import { posix } from 'node:path';

const TEXT = 'text/plain; charset=utf-8';
const TYPES: Record<string, string> = {
  txt: TEXT, log: TEXT, md: 'text/markdown; charset=utf-8', csv: 'text/csv; charset=utf-8', tsv: 'text/tab-separated-values; charset=utf-8',
  json: 'application/json', jsonl: 'application/x-ndjson', ndjson: 'application/x-ndjson', xml: 'application/xml', yaml: 'application/yaml', yml: 'application/yaml',
  html: 'text/html; charset=utf-8', htm: 'text/html; charset=utf-8', css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8', mjs: 'text/javascript; charset=utf-8', ts: TEXT, py: TEXT, sh: TEXT, sql: TEXT, toml: TEXT, ini: TEXT,
  pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip', tgz: 'application/gzip', tar: 'application/x-tar', wasm: 'application/wasm',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml', ico: 'image/x-icon',
  mp3: 'audio/mpeg', wav: 'audio/wav', mp4: 'video/mp4', webm: 'video/webm',
};

/** The Content-Type for a file name (by its last extension, any case); `application/octet-stream` when unknown. */
export function contentTypeFor(path: string): string {
  const base = posix.basename(path);
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return 'application/octet-stream';
  return TYPES[base.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * `attachment; filename="<basename>"`, plus `filename*=UTF-8''<percent-encoded>` (RFC 6266 / RFC 8187) when
 * the name is not plain printable ASCII. The quoted fallback keeps printable ASCII only (quotes, backslashes
 * and controls become `_`), so no name (CR, LF, `"`) can end the header or add another.
 */
export function attachmentDisposition(path: string): string {
  const name = posix.basename(path);
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  if (fallback === name) return `attachment; filename="${name}"`;
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeRfc8187(name)}`;
}

/** Percent-encodes everything but RFC 8187 attr-chars (encodeURIComponent leaves ' ( ) * as they are). */
function encodeRfc8187(s: string): string {
  const wellFormed = s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'); // a lone surrogate would throw
  return encodeURIComponent(wellFormed).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Whether an If-None-Match header matches the ETag `"<tag>"` (weak comparison: `W/` prefixes are ignored). */
export function matchesIfNoneMatch(header: string | null, tag: string): boolean {
  if (header === null) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === `"${tag}"`);
}
