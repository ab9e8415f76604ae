// Turns valibot issues into the API's `details` entries (docs/api.md#errors): one per offending field, with its path.
import * as v from 'valibot';

export interface FieldIssue {
  path: string;
  message: string;
}

/** `files[2].path`-style path; '(root)' for the value itself. */
export function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = item.key as unknown;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

/** Issues listed at most; the rest are counted in one last entry, so an error response stays small. */
export const MAX_ISSUES = 20;

export function toFieldIssues(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  const seen = new Set<string>();
  const out: FieldIssue[] = [];
  let more = 0;
  for (const issue of issues) {
    // Strict objects report an unknown key with the key already in the path.
    const unknownKey = issue.type === 'strict_object' && issue.expected === 'never';
    const entry = { path: issuePath(issue), message: unknownKey ? 'unknown field' : issue.message };
    const key = entry.path + '\0' + entry.message;
    if (seen.has(key)) continue;
    seen.add(key);
    if (out.length < MAX_ISSUES) out.push(entry);
    else more++;
  }
  if (more) out.push({ path: '(root)', message: `and ${more} more issues not listed` });
  return out;
}

/** Parses or returns the field issues; used for requests (400) and config files (refuse to start). */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown):
  | { ok: true; value: v.InferOutput<S> }
  | { ok: false; issues: FieldIssue[] } {
  const r = v.safeParse(schema, input, { abortPipeEarly: true });
  return r.success ? { ok: true, value: r.output } : { ok: false, issues: toFieldIssues(r.issues) };
}
