// The dashboard: GET / and GET /ui/<file>, static files from public/ (no build step). The files carry no data
// (every run detail is fetched by the page from the API, with the key), so they are served without auth.
// Only the files in the table below exist: the URL picks a row, never a filesystem path.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { apiError } from '../lib/http.ts';

const PUBLIC_DIR = new URL('../public/', import.meta.url);

const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' } as const;

/** URL path -> file under public/. */
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/ui/app.js': 'app.js',
  '/ui/api.js': 'api.js',
  '/ui/sse.js': 'sse.js',
  '/ui/sse-parse.js': 'sse-parse.js',
  '/ui/dom.js': 'dom.js',
  '/ui/list.js': 'list.js',
  '/ui/run.js': 'run.js',
  '/ui/transcript.js': 'transcript.js',
  '/ui/files.js': 'files.js',
  '/ui/new-run.js': 'new-run.js',
  '/ui/style.css': 'style.css',
};

/** The paths the dashboard serves; the router lets them through without the key. */
export const UI_PATHS: readonly string[] = Object.keys(FILES);

/**
 * No inline script or style, nothing from another origin; images only from the page itself or from blob:
 * URLs the page made of fetched bytes. Whatever a model or a sandbox wrote is shown as text, and if some
 * slipped through as markup this policy would still keep it from running.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

const cache = new Map<string, Asset | null>();

/** Read once, on first request (a few small files); null when the file is missing from this install. */
function asset(path: string): Asset | null {
  if (!cache.has(path)) {
    const name = FILES[path]!;
    let loaded: Asset | null = null;
    try {
      const body = new Uint8Array(readFileSync(new URL(name, PUBLIC_DIR)));
      const ext = name.slice(name.lastIndexOf('.') + 1) as keyof typeof TYPES;
      loaded = { body, type: TYPES[ext], etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    } catch {
      loaded = null;
    }
    cache.set(path, loaded);
  }
  return cache.get(path)!;
}

/** Serves one row of the table; GET /ui/<unknown> is 404. */
export function uiAsset(req: Request): Response {
  const path = new URL(req.url).pathname;
  const found = Object.hasOwn(FILES, path) ? asset(path) : null;
  if (!found) return apiError(404, 'NOT_FOUND', `no dashboard file ${JSON.stringify(path.slice(0, 200))}`);
  const headers = {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    // No content hashes in the names (no build step): revalidate every time, answered by a 304 on the ETag.
    'cache-control': 'no-cache',
    etag: found.etag,
  };
  const inm = req.headers.get('if-none-match');
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === found.etag)) return new Response(null, { status: 304, headers });
  return new Response(found.body, { status: 200, headers: { ...headers, 'content-type': found.type, 'content-length': String(found.body.byteLength) } });
}
