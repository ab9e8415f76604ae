// Structured output (docs/api.md#structured-output): the final answer must validate against a JSON Schema.
// Ajv is the validator; draft-07 (and older-style) schemas use Ajv, `$schema` 2020-12/2019-09 the matching class.
import * as v from 'valibot';
import { createRequire } from 'node:module';
import type { ToolSpec } from './model.ts';

// Ajv ships CommonJS with `exports.default`; createRequire avoids ESM interop surprises.
const require = createRequire(import.meta.url);
type AjvLike = { compile(schema: object): ValidateFn };
type ValidateFn = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] | null };
const Ajv07: new (opts: object) => AjvLike = require('ajv').default;
const Ajv2020: new (opts: object) => AjvLike = require('ajv/dist/2020').default;
const Ajv2019: new (opts: object) => AjvLike = require('ajv/dist/2019').default;

export type OutputFormat = Record<string, unknown>;

/** A bare JSON Schema object, or the `{type: "json_schema", schema}` wrapper; normalised to the schema. */
export const outputFormatSchema = v.pipe(
  v.record(v.string(), v.unknown()),
  v.transform((o): OutputFormat => (o.type === 'json_schema' && o.schema && typeof o.schema === 'object' ? (o.schema as OutputFormat) : o)),
  v.check((schema) => compileSchema(schema).ok, 'is not a valid JSON Schema'),
);

export const STRUCTURED_OUTPUT_TOOL = 'structured_output';

const cache = new WeakMap<object, ValidateFn>();

export function compileSchema(schema: OutputFormat): { ok: true; validate: ValidateFn } | { ok: false; error: string } {
  const hit = cache.get(schema);
  if (hit) return { ok: true, validate: hit };
  const draft = String(schema.$schema ?? '');
  const Cls = draft.includes('2020-12') ? Ajv2020 : draft.includes('2019-09') ? Ajv2019 : Ajv07;
  try {
    const validate = new Cls({ allErrors: true, strict: false }).compile(schema);
    cache.set(schema, validate);
    return { ok: true, validate };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export function structuredOutputTool(schema: OutputFormat): ToolSpec {
  // Tool inputs must be objects; other root types are wrapped in {"value": ...}.
  const isObject = schema.type === 'object';
  return {
    name: STRUCTURED_OUTPUT_TOOL,
    description:
      'Submit your final answer. Call this exactly once, when you are done, with the answer as its input' +
      (isObject ? '.' : ' under the key "value".'),
    inputSchema: isObject ? schema : { type: 'object', properties: { value: schema }, required: ['value'] },
  };
}

export function unwrapToolAnswer(schema: OutputFormat, input: Record<string, unknown>): unknown {
  return schema.type === 'object' ? input : input.value;
}

/** Finds the JSON in a text answer: the whole text, or the first ```json fence. */
export function extractJson(text: string): { ok: true; value: unknown; text: string } | { ok: false; error: string } {
  const candidates: string[] = [];
  const fence = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fence) candidates.push(fence[1]!.trim());
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

/** Null when valid, else a readable list of what is wrong. */
export function validateOutput(schema: OutputFormat, value: unknown): string | null {
  const compiled = compileSchema(schema);
  if (!compiled.ok) return compiled.error;
  if (compiled.validate(value)) return null;
  return (compiled.validate.errors ?? [])
    .map((e) => {
      // Ajv names an extra property only in params; the model needs it to fix the answer.
      const extra = e.params?.additionalProperty ?? e.params?.unevaluatedProperty;
      return `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${extra !== undefined ? `: ${JSON.stringify(extra)}` : ''}`;
    })
    .join('; ');
}
