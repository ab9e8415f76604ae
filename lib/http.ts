// JSON responses and the one error shape of the API (docs/api.md#errors).
import type { FieldIssue } from './validate.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: FieldIssue[]; hint?: string };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function apiError(
  status: number,
  code: string,
  message: string,
  extra: { details?: FieldIssue[]; hint?: string; headers?: Record<string, string> } = {},
): Response {
  const error: ErrorBody['error'] = { code, message };
  if (extra.details?.length) error.details = extra.details;
  if (extra.hint) error.hint = extra.hint;
  return json(status, { error }, extra.headers);
}

export const invalid = (details: FieldIssue[]) =>
  apiError(400, 'INVALID_REQUEST', `invalid request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
