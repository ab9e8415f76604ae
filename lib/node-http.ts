// The edge of the server: node:http <-> Fetch. Everything a client sends is checked here before a handler
// sees it (request target, percent-encoding, Host, header values); request bodies reach handlers as streams
// bounded in bytes and time; responses stream out with back-pressure, and the response body is cancelled
// (which cancels the run behind an SSE stream) when the client goes away or stops reading.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { BodyLimitError, bytesText } from './body.ts';
import { parseHost } from './host.ts';
import { log } from './log.ts';
import { SlowReaderError } from './sse.ts';

/**
 * Every Request URL has this origin: the path and query are the client's, the host never is. Handlers read
 * only `pathname` and `searchParams`; the client's Host header is checked on its own (lib/host.ts).
 */
export const REQUEST_ORIGIN = 'http://sandcaster.invalid';

/**
 * The rest of a body nobody reads (a GET with a body; a body refused with 401, 404, 413...) is read and
 * dropped, so the client gets to read the answer before the connection closes (closing a socket with unread
 * input resets it, and a reset can destroy the answer in flight). Past these the connection is cut.
 */
const DISCARD_BYTES = 1024 * 1024;
const DISCARD_MS = 2000;

/** What is wrong with a request before any route sees it; the router answers it with the error shape. */
export interface EdgeError {
  status: number;
  code: string;
  message: string;
  hint?: string;
}

/** A Request as handlers get it. `edge` says what the client really sent, for the log and for refusals. */
export type EdgeRequest = Request & { edge: { method: string; target: string; error?: EdgeError } };

export interface EdgeOptions {
  /** The cap on every request body; a route may read less (lib/body.ts). */
  maxBodyBytes: number;
  /** Time from the end of the headers to the end of the body. */
  bodyTimeoutMs: number;
}

/** The router parses the query into an object in time quadratic in repeated keys; no route needs more than a few. */
const MAX_QUERY_PARAMS = 100;

/** Methods a Fetch Request cannot carry; no route serves them. */
const UNCARRIABLE = new Set(['CONNECT', 'TRACE', 'TRACK']);

const malformed = (message: string, hint?: string): EdgeError => ({ status: 400, code: 'MALFORMED_REQUEST', message, ...(hint ? { hint } : {}) });
const quote = (s: string) => JSON.stringify(s.length > 200 ? s.slice(0, 200) + '...' : s);

/** The request line and Host checks of HTTP/1.1 that node's parser leaves to the application. */
function checkRequest(req: IncomingMessage): EdgeError | undefined {
  const method = req.method ?? 'GET';
  const target = req.url ?? '';
  if (req.httpVersionMajor !== 1) return malformed(`HTTP/${req.httpVersion} in an HTTP/1 request line; send HTTP/1.1`);
  if (UNCARRIABLE.has(method)) return { status: 501, code: 'NOT_IMPLEMENTED', message: `this server does not implement the ${method} method` };
  if (!target.startsWith('/')) {
    return malformed(`the request target must be a path starting with "/", got ${quote(target)}`, 'send a path such as /runs; this server is not a proxy');
  }
  if (target.includes('#')) return malformed(`the request target must not contain "#", got ${quote(target)}`);
  try {
    decodeURIComponent(target); // the whole path and query: every % must start a %XX escape of valid UTF-8
  } catch {
    return malformed(`the request target has malformed percent-encoding: ${quote(target)}`, 'escape "%" as %25; every %XX sequence must decode to UTF-8');
  }
  const query = target.indexOf('?');
  if (query >= 0 && target.slice(query).split('&').length > MAX_QUERY_PARAMS) return malformed(`the query has more than ${MAX_QUERY_PARAMS} parameters`);
  const hosts: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
  if (hosts.length > 1) return malformed('the request has more than one Host header');
  if (hosts.length === 0 && req.httpVersion !== '1.0') return malformed('the Host header is missing (HTTP/1.1 requires it)');
  if (hosts.length === 1 && !parseHost(hosts[0]!)) return malformed(`the Host header ${quote(hosts[0]!)} is not a host name or IP address with an optional port`);
  return undefined;
}

/**
 * The request body as a web stream that errors with BodyLimitError past `maxBytes` bytes or once
 * `timeoutMs` pass before its end. `stop()` detaches it from the socket: whatever is left unread is then
 * the adapter's to discard or cut off.
 */
function bodyStream(req: IncomingMessage, opts: EdgeOptions): { stream: ReadableStream<Uint8Array>; stop(): void } {
  let settled = false;
  let size = 0;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const finish = (err?: unknown) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.off('data', onData).off('end', onEnd).off('close', onClose);
    req.pause();
    try {
      if (err) controller.error(err);
      else controller.close();
    } catch {
      /* cancelled by its reader */
    }
  };
  const onData = (chunk: Buffer) => {
    size += chunk.byteLength;
    if (size > opts.maxBodyBytes) return finish(new BodyLimitError(413, `the request body is larger than ${bytesText(opts.maxBodyBytes)}`));
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = () => finish();
  const onClose = () => finish(new Error('the client closed the connection before the body ended'));
  const timer = setTimeout(
    () => finish(new BodyLimitError(408, `the request body did not arrive within ${Math.round(opts.bodyTimeoutMs / 1000)} seconds`)),
    opts.bodyTimeoutMs,
  );
  timer.unref();
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        req.on('data', onData).on('end', onEnd).on('close', onClose);
      },
      pull() {
        if (!settled) req.resume();
      },
      cancel() {
        finish();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
  return { stream, stop: () => finish(new Error('the response was sent before the body was read')) };
}

/** Reads and drops the rest of a body (so the request completes); past DISCARD_BYTES or DISCARD_MS, cuts the connection. */
function discardRest(req: IncomingMessage): void {
  let seen = 0;
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_MS).unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.byteLength;
    if (seen > DISCARD_BYTES) req.socket.destroy();
  });
  req.once('end', () => clearTimeout(timer)).once('close', () => clearTimeout(timer));
  req.resume();
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Builds the Request a handler sees. A request that fails the edge checks gets a bodiless stand-in Request
 * (`edge.error` set), so the router still answers it with the same hooks (error shape, headers, log line).
 */
export function toFetchRequest(req: IncomingMessage, signal: AbortSignal, opts: EdgeOptions): { request: EdgeRequest; body?: { stop(): void } } {
  const method = req.method ?? 'GET';
  const target = req.url ?? '';
  let error = checkRequest(req);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length && !error; i += 2) {
    try {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    } catch {
      error = malformed(`the ${quote(req.rawHeaders[i]!)} header has a value that is not allowed in HTTP`);
    }
  }
  let body: ReturnType<typeof bodyStream> | undefined;
  let request: Request;
  if (error) {
    request = new Request(REQUEST_ORIGIN + '/', { method: 'GET', signal });
  } else {
    const canCarry = method !== 'GET' && method !== 'HEAD';
    if (hasBody(req) && canCarry) body = bodyStream(req, opts);
    else if (hasBody(req)) discardRest(req);
    request = new Request(REQUEST_ORIGIN + target, {
      method,
      headers,
      signal,
      body: body?.stream ?? null,
      // @ts-expect-error -- required by undici for streaming request bodies; missing from the DOM typings
      duplex: 'half',
    });
  }
  return { request: Object.assign(request, { edge: { method, target, ...(error ? { error } : {}) } }), body };
}

/**
 * Writes a Fetch Response to the socket; resolves when it is fully sent or the client went away. The rest
 * of a request body nobody read is discarded within bounds (so no request timer fires under a long-lived
 * stream, and a client pushing a large body to a route that refused it gets no further than the bound).
 */
export async function sendFetchResponse(req: IncomingMessage, res: ServerResponse, response: Response, body?: { stop(): void }): Promise<void> {
  const streaming = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    headers[key] = key === 'set-cookie' ? response.headers.getSetCookie() : value;
  });
  if (!req.complete) {
    body?.stop();
    // A client too slow to send its body is not waited for again; any other rest is read and dropped.
    if (response.status === 408) headers.connection = 'close';
    else discardRest(req);
  }
  res.writeHead(response.status, headers);
  if (!response.body || req.method === 'HEAD') {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  if (streaming) res.flushHeaders(); // the client sees 200 and the headers before the first event
  const reader = response.body.getReader();
  const gone = () => void reader.cancel(new Error('client disconnected')).catch(() => {});
  res.once('close', gone);
  if (res.destroyed) gone(); // the client left before the response started: 'close' has already fired
  // Settles when the producer errors the stream (e.g. it dropped this reader), even while we wait for drain.
  const broken = reader.closed.then(
    () => new Promise<void>(() => {}),
    () => {},
  );
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) break;
      // Writes from one tick are corked into one syscall; many tiny SSE events stay cheap.
      if (!res.writableCorked) {
        res.cork();
        process.nextTick(() => res.uncork());
      }
      if (!res.write(value)) {
        await Promise.race([
          broken,
          new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          }),
        ]);
      }
    }
    if (!res.destroyed) res.end();
  } catch (err) {
    if (err instanceof SlowReaderError) {
      log.warn('client stopped reading its stream; dropped like a disconnect', { runId: response.headers.get('x-run-id') ?? undefined, bufferedBytes: err.bufferedBytes });
    }
    res.destroy();
  } finally {
    res.off('close', gone);
  }
}

/** The request listener for node:http: the edge checks, the handler, the response. Never throws. */
export function createListener(handle: (req: EdgeRequest) => Promise<Response>, opts: EdgeOptions): RequestListener {
  return (req, res) => {
    const controller = new AbortController();
    res.once('close', () => controller.abort());
    let built: ReturnType<typeof toFetchRequest>;
    try {
      built = toFetchRequest(req, controller.signal, opts);
    } catch (err) {
      log.error('request could not be adapted', { method: req.method, error: err, stack: (err as Error)?.stack });
      res.destroy();
      return;
    }
    handle(built.request)
      .then((response) => sendFetchResponse(req, res, response, built.body))
      .catch((err) => {
        log.error('response failed', { error: err, stack: (err as Error)?.stack });
        res.destroy();
      });
  };
}
