// Structured output (docs/api.md#structured-output): the final answer must validate against a JSON Schema.
// Ajv is the validator; draft-07 (and older-style) schemas use Ajv, `$schema` 2020-12/2019-09 the matching class.
// Schemas come from clients and answers from models, so both are bounded: a schema's size and depth are
// checked before anything else looks at it, its patterns run on RE2 (lib/regex.ts), and compiling and
// validating (whose cost grows with schema x answer) run off the event loop (lib/schema-thread.ts).
import * as v from 'valibot';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import type { ToolSpec } from './model.ts';
import { ajvRegExp, linearPatternError } from './regex.ts';
import type { FieldIssue } from './validate.ts';

// Ajv ships CommonJS with `exports.default`; createRequire avoids ESM interop surprises.
const require = createRequire(import.meta.url);
type AjvError = { instancePath: string; message?: string; params?: Record<string, unknown> };
type ValidateFn = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
type AjvLike = { compile(schema: object): ValidateFn; validateSchema(schema: object): boolean; errors?: AjvError[] | null };
type AjvClass = new (opts: object) => AjvLike;
const Ajv07: AjvClass = require('ajv').default;
const Ajv2020: AjvClass = require('ajv/dist/2020').default;
const Ajv2019: AjvClass = require('ajv/dist/2019').default;

export type OutputFormat = Record<string, unknown>;

/** A schema's size: its JSON text (roughly) and how deeply its objects and arrays nest. */
export const SCHEMA_LIMITS = { bytes: 64 * 1024, depth: 32 };
/** Validation errors listed back to the model; the rest are counted. */
export const MAX_REPORTED_ERRORS = 20;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Null when `value` is within SCHEMA_LIMITS, else why not. Walks it once without serialising it and stops
 * as soon as a limit is passed, so even a huge value costs no more than the limit.
 */
export function schemaSizeError(value: unknown): string | null {
  let bytes = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [x, depth] = stack.pop()!;
    bytes += typeof x === 'string' ? x.length + 2 : 1;
    if (typeof x === 'object' && x !== null) {
      if (depth > SCHEMA_LIMITS.depth) return `nests deeper than ${SCHEMA_LIMITS.depth} levels`;
      if (Array.isArray(x)) {
        for (const item of x) {
          bytes++;
          stack.push([item, depth + 1]);
          if (bytes > SCHEMA_LIMITS.bytes) break;
        }
      } else {
        for (const key in x) {
          bytes += key.length + 4;
          stack.push([(x as Record<string, unknown>)[key], depth + 1]);
          if (bytes > SCHEMA_LIMITS.bytes) break;
        }
      }
    }
    if (bytes > SCHEMA_LIMITS.bytes) return `is larger than ${SCHEMA_LIMITS.bytes / 1024} KiB as JSON`;
  }
  return null;
}

function ajvClass(schema: OutputFormat): AjvClass {
  const draft = String(schema.$schema ?? '');
  return draft.includes('2020-12') ? Ajv2020 : draft.includes('2019-09') ? Ajv2019 : Ajv07;
}

// One instance per draft checks schemas against the draft's meta-schema: the cost is linear in the schema,
// and the first error is enough. The meta-schemas are compiled once, at load, on the main thread.
const metaCheckers = new Map<AjvClass, AjvLike>();
function metaChecker(cls: AjvClass): AjvLike {
  let ajv = metaCheckers.get(cls);
  if (!ajv) metaCheckers.set(cls, (ajv = new cls({ strict: false, logger: false, code: { regExp: ajvRegExp } })));
  return ajv;
}
if (isMainThread) for (const cls of [Ajv07, Ajv2019, Ajv2020]) metaChecker(cls).validateSchema({});

/** Null when the schema is valid for its draft's meta-schema, else the first problem. */
export function metaSchemaError(schema: OutputFormat): string | null {
  const ajv = metaChecker(ajvClass(schema));
  try {
    if (ajv.validateSchema(schema)) return null;
  } catch (err) {
    return `is not a valid JSON Schema (${(err as Error).message})`; // e.g. an unknown $schema
  }
  const e = ajv.errors?.[0];
  return `is not a valid JSON Schema (${e ? `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}` : 'rejected by its meta-schema'})`;
}

/**
 * A bare JSON Schema object, or the `{type: "json_schema", schema}` wrapper; normalised to the schema.
 * Only the cheap checks run here (size, depth, meta-schema); patterns and compiling are checkOutputFormat's.
 */
export const outputFormatSchema = v.pipe(
  v.custom<Record<string, unknown>>(isObject, 'must be a JSON Schema object'),
  v.check((o) => schemaSizeError(o) === null, (issue) => schemaSizeError(issue.input) ?? 'is too large'),
  v.transform((o): OutputFormat => (o.type === 'json_schema' && isObject(o.schema) ? o.schema : o)),
  v.check((o) => metaSchemaError(o) === null, (issue) => metaSchemaError(issue.input as OutputFormat) ?? 'is not a valid JSON Schema'),
);

export const STRUCTURED_OUTPUT_TOOL = 'structured_output';

// Keywords whose value is a schema, an array of schemas, or an object of schemas (every draft Ajv knows).
const ONE = ['additionalItems', 'additionalProperties', 'contains', 'contentSchema', 'else', 'if', 'items', 'not', 'propertyNames', 'then', 'unevaluatedItems', 'unevaluatedProperties'];
const LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const MAP = ['$defs', 'definitions', 'dependencies', 'dependentSchemas', 'patternProperties', 'properties'];
const MAX_PATTERN_ISSUES = 5;

/** Every `pattern` and `patternProperties` key RE2 cannot run, with its path (e.g. `properties.id.pattern`). */
export function patternIssues(schema: unknown, at: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const walk = (s: unknown, path: string) => {
    if (!isObject(s) || issues.length >= MAX_PATTERN_ISSUES) return;
    if (typeof s.pattern === 'string') {
      const why = linearPatternError(s.pattern);
      if (why) issues.push({ path: `${path}.pattern`, message: why });
    }
    if (isObject(s.patternProperties)) {
      for (const key of Object.keys(s.patternProperties)) {
        const why = linearPatternError(key);
        if (why) issues.push({ path: `${path}.patternProperties.${key}`, message: why });
      }
    }
    for (const k of ONE) walk(s[k], `${path}.${k}`);
    for (const k of LIST) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach((x, i) => walk(x, `${path}.${k}[${i}]`));
    for (const k of MAP) if (isObject(s[k])) for (const [name, x] of Object.entries(s[k] as object)) walk(x, `${path}.${k}.${name}`);
  };
  walk(schema, at);
  return issues.slice(0, MAX_PATTERN_ISSUES);
}

export type Compiled = { ok: true; validate: ValidateFn } | { ok: false; error: string; issues: FieldIssue[] };

const cache = new WeakMap<object, ValidateFn>();

/**
 * Compiles a schema, synchronously: at start for sandcaster.json, and in the schema thread for requests.
 * Issues name the offending field under `at`; `error` says it in one sentence.
 */
export function compileSchema(schema: OutputFormat, at = 'outputFormat'): Compiled {
  const hit = cache.get(schema);
  if (hit) return { ok: true, validate: hit };
  const fail = (issues: FieldIssue[]): Compiled => ({ ok: false, error: issues.map((i) => `${i.path} ${i.message}`).join('; '), issues });
  const size = schemaSizeError(schema);
  if (size) return fail([{ path: at, message: size }]);
  const meta = metaSchemaError(schema);
  if (meta) return fail([{ path: at, message: meta }]);
  const patterns = patternIssues(schema, at);
  if (patterns.length) return fail(patterns);
  try {
    // A fresh instance per schema: no `$id` clash between clients; the meta-schema check was done above.
    const Cls = ajvClass(schema);
    const validate = new Cls({ allErrors: true, strict: false, logger: false, validateSchema: false, code: { regExp: ajvRegExp } }).compile(schema);
    cache.set(schema, validate);
    return { ok: true, validate };
  } catch (err) {
    return fail([{ path: at, message: `is not a usable JSON Schema (${(err as Error).message})` }]);
  }
}

export function structuredOutputTool(schema: OutputFormat): ToolSpec {
  // Tool inputs must be objects; other root types are wrapped in {"value": ...}.
  const isObjectRoot = schema.type === 'object';
  return {
    name: STRUCTURED_OUTPUT_TOOL,
    description:
      'Submit your final answer. Call this exactly once, when you are done, with the answer as its input' +
      (isObjectRoot ? '.' : ' under the key "value".'),
    inputSchema: isObjectRoot ? schema : { type: 'object', properties: { value: schema }, required: ['value'] },
  };
}

export function unwrapToolAnswer(schema: OutputFormat, input: Record<string, unknown>): unknown {
  return schema.type === 'object' ? input : input.value;
}

/** Finds the JSON in a text answer: the first ``` fence (optionally tagged json), else the whole text. */
export function extractJson(text: string): { ok: true; value: unknown; text: string } | { ok: false; error: string } {
  const candidates: string[] = [];
  const fence = fencedBlock(text);
  if (fence !== null) candidates.push(fence.trim());
  candidates.push(text.trim());
  for (const c of candidates) {
    try {
      return { ok: true, value: JSON.parse(c), text: c };
    } catch {
      /* try the next candidate */
    }
  }
  return { ok: false, error: 'the answer is not valid JSON' };
}

/** The body of the first ``` fence, found with two indexOf scans (a RegExp here was quadratic on whitespace). */
function fencedBlock(text: string): string | null {
  const open = text.indexOf('```');
  if (open < 0) return null;
  let start = open + 3;
  if (text.slice(start, start + 4).toLowerCase() === 'json') start += 4;
  const close = text.indexOf('```', start);
  return close < 0 ? null : text.slice(start, close);
}

/** Null when valid, else a readable list of what is wrong (at most MAX_REPORTED_ERRORS, then a count). */
export function validateOutput(schema: OutputFormat, value: unknown): string | null {
  const compiled = compileSchema(schema);
  if (!compiled.ok) return compiled.error;
  if (compiled.validate(value)) return null;
  const errors = compiled.validate.errors ?? [];
  const listed = errors.slice(0, MAX_REPORTED_ERRORS).map((e) => {
    // Ajv names an extra property only in params; the model needs it to fix the answer.
    const extra = e.params?.additionalProperty ?? e.params?.unevaluatedProperty;
    return `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${extra !== undefined ? `: ${JSON.stringify(extra)}` : ''}`;
  });
  if (errors.length > MAX_REPORTED_ERRORS) listed.push(`and ${errors.length - MAX_REPORTED_ERRORS} more errors`);
  return listed.join('; ');
}
