// GET /runs (paged with ?before=<run id>), GET /runs/:id and GET /runs/:id/files/<path>: this instance's run history and what runs returned.
import type { AppContext } from '../lib/app-context.ts';
import { attachmentDisposition, contentTypeFor, matchesIfNoneMatch } from '../lib/download.ts';
import { apiError, invalid, json } from '../lib/http.ts';
import { runView } from '../lib/results.ts';
import { RUN_STATUSES, type RunStatus } from '../lib/store.ts';
import { runNotFound } from './run-events.ts';

export function listRuns(req: Request, app: AppContext): Response {
  const q = new URL(req.url).searchParams;
  const rawLimit = q.get('limit');
  let limit = 20;
  if (rawLimit !== null) {
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 200) {
      return invalid([{ path: 'limit', message: `must be a whole number from 1 to 200, got ${JSON.stringify(rawLimit)}` }]);
    }
    limit = Number(rawLimit);
  }
  const status = q.get('status');
  if (status !== null && !RUN_STATUSES.includes(status as RunStatus)) {
    return invalid([{ path: 'status', message: `must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(status)}` }]);
  }
  const before = q.get('before');
  if (before === null) return json(200, app.store.list(limit, (status as RunStatus | null) ?? undefined));
  // A page cursor: the last run of the previous page (how the dashboard and `sandcaster runs` page past 200).
  const page = before.length <= 200 ? app.store.listBefore(before, limit, (status as RunStatus | null) ?? undefined) : null;
  if (!page) return invalid([{ path: 'before', message: `must be the id of a run on this instance (the last one of the previous page), got ${JSON.stringify(before.slice(0, 200))}` }]);
  return json(200, page);
}

export function getRun(req: Request & { params?: Record<string, string> }, app: AppContext): Response {
  const id = req.params?.id ?? ''; // percent-decoded by the router
  const run = runView(app.store, id);
  return run ? json(200, run) : runNotFound(app, id);
}

/**
 * The bytes of a file the run returned, matched exactly by its path (the store is read, never a filesystem).
 * The router has percent-decoded the path once (a malformed escape is its 400).
 */
export function getRunFile(req: Request & { params?: Record<string, string> }, app: AppContext): Response {
  const id = req.params?.id ?? '';
  const path = req.params?.path ?? '';
  if (!app.store.get(id)) return runNotFound(app, id);
  const info = app.store.fileInfo(id, path);
  if (!info) return apiError(404, 'NOT_FOUND', `run ${id} returned no file ${JSON.stringify(path)}`, { hint: `GET /runs/${id} lists its files` });
  const expired = () =>
    apiError(410, 'EVENTS_EXPIRED', `the contents of ${JSON.stringify(path)} were removed by retention`, {
      hint: 'raise SANDCASTER_RETENTION_DAYS or SANDCASTER_RETENTION_MB to keep files longer',
    });
  if (!info.stored) return expired();
  const headers: Record<string, string> = {
    etag: `"${info.sha256}"`,
    'cache-control': 'private, no-cache',
    // The bytes came out of a sandbox: never let a browser sniff or run them on this origin.
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; sandbox",
  };
  if (matchesIfNoneMatch(req.headers.get('if-none-match'), info.sha256)) return new Response(null, { status: 304, headers });
  // One stored chunk per pull, as the client reads: no whole file in memory, no long read in one go.
  let seq = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = app.store.fileChunk(id, path, seq++);
      if (chunk) controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      else controller.close();
    },
  });
  return new Response(body, {
    status: 200,
    headers: {
      ...headers,
      'content-type': contentTypeFor(path),
      'content-length': String(info.size),
      'content-disposition': attachmentDisposition(path),
    },
  });
}
