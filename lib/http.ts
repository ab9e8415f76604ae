// JSON responses and the one error shape of the API: {"error": {"code", "message", "details"?, "hint"?}}. See docs/api.md#errors.
import type { FieldIssue } from './validate.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: FieldIssue[]; hint?: string };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  // A final newline: `curl` output ends cleanly, and line-oriented tools see one line per body.
  return new Response(JSON.stringify(body) + '\n', {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function errorBody(code: string, message: string, extra: { details?: FieldIssue[]; hint?: string } = {}): ErrorBody {
  const error: ErrorBody['error'] = { code, message };
  if (extra.details?.length) error.details = extra.details;
  if (extra.hint) error.hint = extra.hint;
  return { error };
}

export function apiError(
  status: number,
  code: string,
  message: string,
  extra: { details?: FieldIssue[]; hint?: string; headers?: Record<string, string> } = {},
): Response {
  return json(status, errorBody(code, message, extra), extra.headers);
}

export const invalid = (details: FieldIssue[]) =>
  apiError(400, 'INVALID_REQUEST', `invalid request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
