// Reading a JSON request body with the SPEC's limits and media types (413, 415, 400).
import { apiError, invalid } from './http.ts';
import { jsonShapeError } from './json-scan.ts';

export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** No Content-Type, JSON, any `+json` type, and what `curl -d` sends are all read as JSON. */
export function isJsonContentType(header: string | null): boolean {
  if (!header) return true;
  const type = header.split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/json' || type.endsWith('+json') || type === 'application/x-www-form-urlencoded';
}

/** The parsed body, or the error response to send. */
export async function readJson(req: Request, limit = MAX_BODY_BYTES): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const tooLarge = () => ({ ok: false as const, response: apiError(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${limit} bytes (16 MiB)`) });
  const declared = Number(req.headers.get('content-length') ?? '0');
  if (declared > limit) return tooLarge();
  if (!isJsonContentType(req.headers.get('content-type'))) {
    return {
      ok: false,
      response: apiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${req.headers.get('content-type')} is not supported; send JSON`, { hint: 'use Content-Type: application/json' }),
    };
  }
  // Count bytes as they arrive: a chunked body has no Content-Length to trust.
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return tooLarge();
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: false, response: invalid([{ path: '(root)', message: 'the body is empty; send a JSON object' }]) };
  const shape = jsonShapeError(text); // JSON.parse of a deep or crowded body would block the event loop for seconds
  if (shape) return { ok: false, response: invalid([{ path: '(root)', message: `the body ${shape}` }]) };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, response: invalid([{ path: '(root)', message: `the body is not valid JSON (${(err as Error).message})` }]) };
  }
}
