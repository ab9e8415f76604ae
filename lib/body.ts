// Reading a request body: a byte cap per route, the time limit of the body stream, then the media type
// and JSON (413, 408, 415, 400). Nothing looks at a body's bytes before they have passed both limits. See docs/api.md#errors.
import { apiError, invalid } from './http.ts';
import { jsonShapeError } from './json-scan.ts';

/** The largest body any route accepts (POST /query); the HTTP adapter cuts every body off past it. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * Put into a request body stream by the HTTP adapter: the body passed the server-wide cap (413) or did not
 * arrive within the body time limit (408). Whoever reads the body sees it as the stream's error.
 */
export class BodyLimitError extends Error {
  constructor(
    readonly status: 413 | 408,
    message: string,
  ) {
    super(message);
    this.name = 'BodyLimitError';
  }
}

/** `16 MiB`, `1 MiB`, `1000 bytes`. */
export const bytesText = (n: number) => (n >= 1024 * 1024 && n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`);

export const tooLarge = (limit: number) => apiError(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${bytesText(limit)}`);

/** The response for a body stream that failed: its own limit, or a client that went away mid-body. */
export function bodyFailure(err: unknown): Response {
  if (err instanceof BodyLimitError && err.status === 408) {
    return apiError(408, 'REQUEST_TIMEOUT', err.message, { hint: 'send the whole body at once, or raise SANDCASTER_BODY_TIMEOUT_SECONDS' });
  }
  if (err instanceof BodyLimitError) return apiError(413, 'PAYLOAD_TOO_LARGE', err.message);
  return apiError(400, 'INVALID_REQUEST', 'the request body ended before it was complete');
}

type BodyResult = { ok: true; bytes: Buffer } | { ok: false; response: Response };

/** All of the body, at most `limit` bytes, counted as they arrive (a chunked body has no length to trust). */
export async function readBody(req: Request, limit: number): Promise<BodyResult> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) return { ok: false, response: tooLarge(limit) };
  if (!req.body) return { ok: true, bytes: Buffer.alloc(0) };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        // Stops reading only; the adapter closes the connection once the 413 is sent.
        void reader.cancel().catch(() => {});
        return { ok: false, response: tooLarge(limit) };
      }
      chunks.push(value);
    }
  } catch (err) {
    return { ok: false, response: bodyFailure(err) };
  }
  return { ok: true, bytes: Buffer.concat(chunks, total) };
}

/** No Content-Type, JSON, any `+json` type, and what `curl -d` sends are all read as JSON. */
export function isJsonContentType(header: string | null): boolean {
  if (!header) return true;
  const type = header.split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/json' || type.endsWith('+json') || type === 'application/x-www-form-urlencoded';
}

/** The parsed body, or the error response to send (413 is checked before 415, from the declared length). */
export async function readJson(req: Request, limit = MAX_BODY_BYTES): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) return { ok: false, response: tooLarge(limit) };
  if (!isJsonContentType(req.headers.get('content-type'))) {
    return {
      ok: false,
      response: apiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${req.headers.get('content-type')} is not supported; send JSON`, { hint: 'use Content-Type: application/json' }),
    };
  }
  const body = await readBody(req, limit);
  if (!body.ok) return body;
  const text = body.bytes.toString('utf8');
  if (text.trim() === '') return { ok: false, response: invalid([{ path: '(root)', message: 'the body is empty; send a JSON object' }]) };
  const shape = jsonShapeError(text); // JSON.parse of a deep or crowded body would block the event loop for seconds
  if (shape) return { ok: false, response: invalid([{ path: '(root)', message: `the body ${shape}` }]) };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, response: invalid([{ path: '(root)', message: `the body is not valid JSON (${(err as Error).message})` }]) };
  }
}
