// POST /query body: schema (docs/api.md#request-body) and its normalised form.
import { posix } from 'node:path';
import * as v from 'valibot';
import { MAX_CALLBACK_URL_CHARS, parseCallbackUrl } from './callbacks.ts';
import { MODEL_PROVIDERS, THINKING_LEVELS, compositeSchema } from './config.ts';
import { ALL_TOOL_NAMES } from './tools.ts';
import { outputFormatSchema } from './structured.ts';
import { parseWith, type FieldIssue } from './validate.ts';

export const MAX_UPLOAD_FILES = 20;
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

const fileItem = v.strictObject({
  path: v.string(),
  content: v.string(),
  encoding: v.optional(v.picklist(['utf8', 'base64'])),
});

export const querySchema = v.strictObject({
  prompt: v.pipe(
    v.string(),
    v.minLength(1, 'is required and must not be empty'),
    v.maxLength(1_000_000, 'must be at most 1,000,000 characters'),
    v.check((s) => s.trim().length > 0, 'must not be only whitespace'),
  ),
  model: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200))),
  provider: v.optional(v.picklist(MODEL_PROVIDERS)),
  maxTurns: v.optional(int(1, 500)),
  timeout: v.optional(int(5, 3600)),
  // Either form; lazy (not a union) so errors inside an item name that item's field.
  files: v.optional(
    v.lazy((input) =>
      Array.isArray(input)
        ? v.array(fileItem)
        : v.record(v.string(), v.string(), 'must be an array of {path, content, encoding?} or an object of path: text'),
    ),
  ),
  outputFormat: v.optional(outputFormatSchema),
  allowedTools: v.optional(v.array(v.picklist(ALL_TOOL_NAMES, `must be one of ${ALL_TOOL_NAMES.join(', ')}`))),
  systemPrompt: v.optional(v.pipe(v.string(), v.maxLength(1_000_000))),
  thinkingLevel: v.optional(v.picklist(THINKING_LEVELS)),
  sandboxProvider: v.optional(v.pipe(v.string(), v.nonEmpty('must not be empty'), v.maxLength(64, 'must be a provider name'))), // checked against the table by planRun
  composite: v.optional(compositeSchema),
  // Shape only here; the allow-list is the configuration's (lib/plan.ts).
  callbackUrl: v.optional(
    v.pipe(
      v.string(),
      v.maxLength(MAX_CALLBACK_URL_CHARS, `must be at most ${MAX_CALLBACK_URL_CHARS} characters`),
      v.check((raw) => !('error' in parseCallbackUrl(raw)), (issue) => {
        const parsed = parseCallbackUrl(String(issue.input));
        return 'error' in parsed ? parsed.error : 'is not a valid URL';
      }),
    ),
  ),
});

export type QueryBody = v.InferOutput<typeof querySchema>;
export interface Upload {
  /** Normalised, relative to /workspace. */
  path: string;
  bytes: Buffer;
}
export type QueryRequest = Omit<QueryBody, 'files'> & { files: Upload[] };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A safe relative path under /workspace, or an error sentence. */
export function normaliseUploadPath(path: string): string | { error: string } {
  if (path.length === 0) return { error: 'must not be empty' };
  if (path.includes('\0')) return { error: 'must not contain NUL bytes' };
  if (path.startsWith('/') || path.startsWith('\\')) return { error: 'must be relative to /workspace' };
  const norm = posix.normalize(path.replace(/\\/g, '/'));
  if (norm === '..' || norm.startsWith('../')) return { error: 'must not escape /workspace' };
  if (norm === '.' || norm.endsWith('/')) return { error: 'must name a file' };
  return norm.replace(/^\.\//, '');
}

function decodeUploads(files: QueryBody['files']): Upload[] | FieldIssue[] {
  if (!files) return [];
  const list = Array.isArray(files) ? files.map((f, i) => ({ ...f, at: `files[${i}]` })) : Object.entries(files).map(([path, content]) => ({ path, content, encoding: 'utf8' as const, at: `files.${path}` }));
  const issues: FieldIssue[] = [];
  if (list.length > MAX_UPLOAD_FILES) return [{ path: 'files', message: `at most ${MAX_UPLOAD_FILES} files, got ${list.length}` }];
  const seen = new Map<string, string>();
  const out: Upload[] = [];
  let total = 0;
  for (const f of list) {
    const norm = normaliseUploadPath(f.path);
    if (typeof norm !== 'string') {
      issues.push({ path: `${f.at}.path`, message: norm.error });
      continue;
    }
    if (seen.has(norm)) {
      issues.push({ path: `${f.at}.path`, message: `duplicates ${seen.get(norm)} (both are ${norm})` });
      continue;
    }
    seen.set(norm, f.at);
    if (f.encoding === 'base64' && !BASE64.test(f.content.replace(/\s+/g, ''))) {
      issues.push({ path: `${f.at}.content`, message: 'is not valid base64' });
      continue;
    }
    const bytes = Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8');
    total += bytes.length;
    out.push({ path: norm, bytes });
  }
  if (total > MAX_UPLOAD_BYTES) issues.push({ path: 'files', message: `at most 10 MiB decoded in total, got ${total} bytes` });
  return issues.length ? issues : out;
}

export function parseQuery(body: unknown): { ok: true; value: QueryRequest } | { ok: false; issues: FieldIssue[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { ok: false, issues: [{ path: '(root)', message: 'the body must be a JSON object' }] };
  const parsed = parseWith(querySchema, body);
  if (!parsed.ok) return parsed;
  const files = decodeUploads(parsed.value.files);
  if (files.length && !(files[0] as Upload).bytes) return { ok: false, issues: files as FieldIssue[] };
  return { ok: true, value: { ...parsed.value, files: files as Upload[] } };
}
