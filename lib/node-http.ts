// node:http <-> Fetch adapter: streams request and response bodies both ways with back-pressure, and
// cancels the response body (which cancels the run behind an SSE stream) when the client goes away.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

export function toFetchRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const host = req.headers.host ?? 'localhost';
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`http://${host}${req.url ?? '/'}`, {
    method: req.method,
    headers,
    signal,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
    // @ts-expect-error -- required by undici for streaming request bodies; missing from the DOM typings
    duplex: 'half',
  });
}

/** Writes a Fetch Response to the socket; resolves when it is fully sent or the client went away. */
export async function sendFetchResponse(res: ServerResponse, response: Response, headOnly: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    headers[key] = key === 'set-cookie' ? response.headers.getSetCookie() : value;
  });
  res.writeHead(response.status, headers);
  if (!response.body || headOnly) {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  const streaming = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
  if (streaming) res.flushHeaders(); // the client sees 200 and the headers before the first event
  const reader = response.body.getReader();
  const gone = () => void reader.cancel(new Error('client disconnected')).catch(() => {});
  res.once('close', gone);
  if (res.destroyed) gone(); // the client left before the response started: 'close' has already fired
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
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    if (!res.destroyed) res.end();
  } catch {
    res.destroy();
  } finally {
    res.off('close', gone);
  }
}
