// POST /query body: schema (docs/api.md#request-body) and its normalised form.
import { posix } from 'node:path';
import * as v from 'valibot';
import { MAX_CALLBACK_URL_CHARS, parseCallbackUrl } from './callbacks.ts';
import { MODEL_PROVIDERS, THINKING_LEVELS, compositeSchema } from './config.ts';
import { ALL_TOOL_NAMES } from './tool-names.ts';
import { outputFormatSchema, schemaSizeError } from './structured.ts';
import { parseWith, type FieldIssue } from './validate.ts';

export const MAX_UPLOAD_FILES = 20;
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
export const ON_DISCONNECT = ['cancel', 'continue'] as const;
/** Linux limits: a whole path (PATH_MAX) and one file or folder name (NAME_MAX), in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

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
  // What a client disconnect does to the run: "cancel" it (default), or let it "continue" (reattach with
  // GET /runs/:id/events). `detach: true` answers 202 at once and implies "continue".
  onDisconnect: v.optional(v.picklist(ON_DISCONNECT)),
  detach: v.optional(v.boolean()),
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
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return { error: `must be at most ${MAX_PATH_BYTES} bytes (UTF-8)` };
  if (path.includes('\0')) return { error: 'must not contain NUL bytes' };
  if (path.startsWith('/') || path.startsWith('\\')) return { error: 'must be relative to /workspace' };
  const slashed = path.replace(/\\/g, '/');
  const last = slashed.slice(slashed.lastIndexOf('/') + 1);
  if (last === '.' || last === '..') return { error: 'must name a file, not "." or ".."' };
  const norm = posix.normalize(slashed);
  if (norm === '..' || norm.startsWith('../')) return { error: 'must not escape /workspace' };
  if (norm === '.' || norm.endsWith('/')) return { error: 'must name a file' };
  const rel = norm.replace(/^\.\//, '');
  const long = rel.split('/').find((name) => Buffer.byteLength(name) > MAX_NAME_BYTES);
  if (long !== undefined) return { error: `has a name over ${MAX_NAME_BYTES} bytes (UTF-8): ${JSON.stringify(long.slice(0, 40))}...` };
  return rel;
}

/** Folders that hold `path` ("a/b/c" -> "a", "a/b"). */
const foldersOf = (path: string) => {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
};

function decodeUploads(files: QueryBody['files']): Upload[] | FieldIssue[] {
  if (!files) return [];
  const given = Array.isArray(files) ? files.map((f, i) => ({ ...f, at: `files[${i}]` })) : Object.entries(files).map(([path, content]) => ({ path, content, encoding: 'utf8' as const, at: `files.${path}` }));
  const issues: FieldIssue[] = [];
  if (given.length > MAX_UPLOAD_FILES) return [{ path: 'files', message: `at most ${MAX_UPLOAD_FILES} files, got ${given.length}` }];
  // Base64 may be wrapped in lines; sizes come from the text alone, so nothing is decoded past the limit.
  const list = given.map((f) => (f.encoding === 'base64' ? { ...f, content: f.content.replace(/\s+/g, '') } : f));
  const total = list.reduce((n, f) => n + Buffer.byteLength(f.content, f.encoding === 'base64' ? 'base64' : 'utf8'), 0);
  if (total > MAX_UPLOAD_BYTES) return [{ path: 'files', message: `at most 10 MiB decoded in total, got ${total} bytes` }];
  const seen = new Map<string, string>(); // normalised path -> the field that uploads it as a file
  const folders = new Map<string, string>(); // folder -> the first field that needs it to be a folder
  const out: Upload[] = [];
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
    // A path cannot be both a file and a folder: "a" and "a/b" together would fail inside the sandbox.
    const asFolder = folders.get(norm);
    if (asFolder !== undefined) {
      issues.push({ path: `${f.at}.path`, message: `${norm} is a folder of ${asFolder}.path, so it cannot also be a file` });
      continue;
    }
    const parents = foldersOf(norm);
    const clash = parents.find((d) => seen.has(d));
    if (clash !== undefined) {
      issues.push({ path: `${f.at}.path`, message: `is inside ${clash}/, which ${seen.get(clash)}.path uploads as a file` });
      continue;
    }
    seen.set(norm, f.at);
    for (const d of parents) if (!folders.has(d)) folders.set(d, f.at);
    if (f.encoding === 'base64' && !BASE64.test(f.content)) {
      issues.push({ path: `${f.at}.content`, message: 'is not valid base64' });
      continue;
    }
    out.push({ path: norm, bytes: Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8') });
  }
  return issues.length ? issues : out;
}

/** Counts an object's keys, stopping past `max` (so the count is exact up to max + 1). */
function keyCount(o: object, max: number): number {
  let n = 0;
  for (const _ in o) if (++n > max) break;
  return n;
}
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Top-level fields a body may have at most (there are 15 known ones). */
const MAX_FIELDS = 32;
/** Keys of a file item or of `composite` at most (each has at most 4 known ones). */
const MAX_ITEM_FIELDS = 8;
/** Items of `composite.allowedProviders` or `composite.allowedTemplates` at most. */
const MAX_LIST_ITEMS = 64;

/**
 * Size checks before the schema looks at any item: each array and object is measured first, so a body
 * with 500,000 items costs one comparison, not 500,000 validations (and as many issues).
 */
function preflight(body: Record<string, unknown>): FieldIssue[] {
  const fields = keyCount(body, MAX_FIELDS);
  if (fields > MAX_FIELDS) return [{ path: '(root)', message: `has more than ${MAX_FIELDS} fields; see the documented fields of POST /query` }];
  const issues: FieldIssue[] = [];
  // `exact` is false for key counts, which stop counting past the limit.
  const atMost = (path: string, n: number, max: number, what: string, exact = true) => {
    if (n > max) issues.push({ path, message: `must have at most ${max} ${what}, got ${exact ? n : 'more'} (their contents were not checked)` });
  };
  const { files, allowedTools, composite, outputFormat } = body;
  if (Array.isArray(files)) {
    atMost('files', files.length, MAX_UPLOAD_FILES, 'files');
    if (files.length <= MAX_UPLOAD_FILES) files.forEach((f, i) => isObject(f) && atMost(`files[${i}]`, keyCount(f, MAX_ITEM_FIELDS), MAX_ITEM_FIELDS, 'fields', false));
  } else if (isObject(files)) atMost('files', keyCount(files, MAX_UPLOAD_FILES), MAX_UPLOAD_FILES, 'files', false);
  if (Array.isArray(allowedTools)) atMost('allowedTools', allowedTools.length, ALL_TOOL_NAMES.length, 'items (one per tool)');
  if (isObject(composite)) {
    atMost('composite', keyCount(composite, MAX_ITEM_FIELDS), MAX_ITEM_FIELDS, 'fields', false);
    if (Array.isArray(composite.allowedProviders)) atMost('composite.allowedProviders', composite.allowedProviders.length, MAX_LIST_ITEMS, 'items');
    if (Array.isArray(composite.allowedTemplates)) atMost('composite.allowedTemplates', composite.allowedTemplates.length, MAX_LIST_ITEMS, 'items');
  }
  if (outputFormat !== undefined) {
    const why = schemaSizeError(outputFormat);
    if (why) issues.push({ path: 'outputFormat', message: why });
  }
  return issues;
}

export function parseQuery(body: unknown): { ok: true; value: QueryRequest } | { ok: false; issues: FieldIssue[] } {
  if (!isObject(body)) return { ok: false, issues: [{ path: '(root)', message: 'the body must be a JSON object' }] };
  const early = preflight(body);
  if (early.length) return { ok: false, issues: early };
  const parsed = parseWith(querySchema, body);
  if (!parsed.ok) return parsed;
  if (parsed.value.detach && parsed.value.onDisconnect === 'cancel') {
    return { ok: false, issues: [{ path: 'onDisconnect', message: 'must not be "cancel" with detach: true (a detached run has no connection to lose)' }] };
  }
  const files = decodeUploads(parsed.value.files);
  if (files.length && !(files[0] as Upload).bytes) return { ok: false, issues: files as FieldIssue[] };
  return { ok: true, value: { ...parsed.value, files: files as Upload[] } };
}
