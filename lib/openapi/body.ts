// The JSON Schema of the POST /query body, generated from the valibot schema the server validates with
// (lib/request.ts) so the two cannot drift, then refined with the rules the server states in code.
import { toJsonSchema, type ConversionConfig } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { MAX_UPLOAD_FILES, querySchema } from '../request.ts';
import type { Json } from './parts.ts';

/** Valibot parts the converter cannot express; each stays a server-side check, listed in the body's description. */
const SERVER_ONLY_ACTIONS = new Set(['check', 'rawCheck', 'trim', 'transform']);
const SERVER_ONLY_SCHEMAS = new Set(['custom']);

const SERVER_ONLY_RULES =
  'Also checked by the server only (400 INVALID_REQUEST): upload paths (relative, no `..` escape, no duplicates ' +
  'after normalising), the 10 MiB decoded total, base64 validity, that `outputFormat` is itself a valid JSON Schema, ' +
  'and that `model` is 1..200 characters once trimmed. Lengths count UTF-16 code units.';

/** One line per body field; a field the schema does not have is skipped, so pending fields cost nothing. */
const FIELD_DOCS: Record<string, string> = {
  prompt: 'The task. Required; not only whitespace.',
  model: 'An alias (sonnet, opus, haiku, gpt5, gpt5mini, gemini) or a full model id.',
  provider: 'Default: from the model id, else the configured provider, else the first with a key set.',
  maxTurns: 'Model calls before the run stops (default 50).',
  timeout: 'Whole-run seconds (default 300).',
  files: `Uploads placed under /workspace: [{path, content, encoding?}] or {"<path>": "<text>"}; at most ${MAX_UPLOAD_FILES} files, 10 MiB decoded.`,
  outputFormat: 'A JSON Schema (or {"type":"json_schema","schema":{...}}) the final answer must validate against.',
  allowedTools: 'A subset of the tool names.',
  systemPrompt: 'Appended to the configured system prompt.',
  thinkingLevel: "The provider's reasoning/thinking setting, where the model has one (default none).",
  sandboxProvider: 'A row of the sandbox-provider table. Default: see docs/configuration.md#choosing-a-sandbox-provider.',
  composite: 'Enables composite runs; can only tighten the configuration (looser values are clamped with a warning).',
  onDisconnect: 'What a client disconnect does: cancel (default) or continue.',
  detach: 'Answer 202 at once; read the run later with /runs/{id}/events.',
  callbackUrl: 'POSTed the run record when the run ends; must start with a prefix in SANDCASTER_CALLBACK_ALLOWLIST.',
};

/**
 * The JSON Schema (2020-12, OpenAPI 3.1's dialect) of the POST /query body, from lib/request.ts's valibot
 * schema. `unconverted` lists valibot parts the converter could not express that are not known server-only
 * checks: a non-empty list means the document says less than the validator, and the test fails.
 *
 * @example Usage
 * ```ts
 * import { queryBodySchema } from './body.ts';
 * const { schema, unconverted } = queryBodySchema();
 * console.log(Object.keys(schema.properties as object), unconverted); // [ 'prompt', 'model', ... ] []
 * ```
 */
export function queryBodySchema(opts: SchemaOptions = {}): { schema: Json; unconverted: string[] } {
  const unconverted: string[] = [];
  const config: ConversionConfig = {
    target: 'draft-2020-12',
    errorMode: 'ignore',
    overrideSchema(ctx) {
      const s = ctx.valibotSchema as v.GenericSchema & { getter?: (input: unknown) => v.GenericSchema };
      if (s.type === 'lazy' && s.getter) {
        // `files`: the getter picks the array or the object form from the input; the document shows both.
        const forms = [convert(s.getter([])), convert(s.getter({}))];
        return JSON.stringify(forms[0]) === JSON.stringify(forms[1]) ? forms[0]! : { anyOf: forms };
      }
      if (ctx.errors && !SERVER_ONLY_SCHEMAS.has(s.type)) unconverted.push(`schema ${s.type}: ${ctx.errors.join('; ')}`);
      return undefined;
    },
    overrideAction(ctx) {
      if (ctx.errors && !SERVER_ONLY_ACTIONS.has(ctx.valibotAction.type)) unconverted.push(`action ${ctx.valibotAction.type}: ${ctx.errors.join('; ')}`);
      return undefined;
    },
  };
  const convert = (s: v.GenericSchema): Json => {
    const { $schema: _, $defs, ...rest } = toJsonSchema(s, config) as Json;
    // Definitions would need hoisting into components; none are expected, so one is reported, not hidden.
    if ($defs && JSON.stringify(rest).includes('"$ref"')) unconverted.push('a $ref into $defs (hoist it into components.schemas)');
    return rest;
  };
  const schema = convert(querySchema);
  refine(schema, opts);
  return { schema, unconverted };
}

/** What the document may take from the server's configuration. */
export interface SchemaOptions {
  /** The sandbox-provider rows in use (the request schema takes any name; the plan checks it against these). */
  sandboxProviders?: readonly string[];
}

/**
 * Rules the server states in code (v.check, v.trim, the upload count in lib/request.ts, the sandbox-provider
 * table in lib/plan.ts) that JSON Schema can say as well.
 */
function refine(schema: Json, opts: SchemaOptions): void {
  const props = (schema.properties ?? {}) as Record<string, Json>;
  const notBlank = { pattern: '\\S' }; // prompt: not only whitespace; model: trimmed, then not empty
  if (props.prompt) Object.assign(props.prompt, notBlank);
  if (props.model) {
    Object.assign(props.model, notBlank);
    delete props.model.maxLength; // counted after trimming: the schema must not refuse a padded id the server takes
  }
  // A custom object check (not expressible) must still say "object", or the field would read as "anything".
  if (props.outputFormat && props.outputFormat.type === undefined) props.outputFormat.type = 'object';
  for (const form of ((props.files?.anyOf ?? [props.files]) as (Json | undefined)[])) {
    if (form?.type === 'array') form.maxItems = MAX_UPLOAD_FILES;
    if (form?.type === 'object') form.maxProperties = MAX_UPLOAD_FILES;
  }
  if (props.sandboxProvider && opts.sandboxProviders?.length) props.sandboxProvider.enum = [...opts.sandboxProviders];
  for (const [name, text] of Object.entries(FIELD_DOCS)) if (props[name]) props[name].description = text;
  schema.description = `The POST /query body (docs/api.md#request-body). ${SERVER_ONLY_RULES}`;
}
