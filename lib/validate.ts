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

export function toFieldIssues(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  const seen = new Set<string>();
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    // Strict objects report an unknown key with the key already in the path.
    const unknownKey = issue.type === 'strict_object' && issue.expected === 'never';
    const entry = { path: issuePath(issue), message: unknownKey ? 'unknown field' : issue.message };
    const key = entry.path + '\0' + entry.message;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(entry);
    }
  }
  return out;
}

/** Parses or returns the field issues; used for requests (400) and config files (refuse to start). */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown):
  | { ok: true; value: v.InferOutput<S> }
  | { ok: false; issues: FieldIssue[] } {
  const r = v.safeParse(schema, input, { abortPipeEarly: true });
  return r.success ? { ok: true, value: r.output } : { ok: false, issues: toFieldIssues(r.issues) };
}
