// The HTTP API as an OpenAPI 3.1 document (docs/api.md is the prose; docs/api.md#openapi-document).
// The POST /query body schema is generated from the valibot schema the server validates with
// (lib/request.ts), so the two cannot drift; paths, responses and event shapes are written here. An
// operation is included only when the router serves it, so the document never lists a route this server
// does not have; tests/openapi.test.ts checks that every registered route has its operation here.
import { toJsonSchema, type ConversionConfig } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { MAX_UPLOAD_FILES, querySchema } from './request.ts';
import { RUN_STATUSES } from './store.ts';
import { VERSION } from './version.ts';

type Json = Record<string, unknown>;

/** A route as the router holds it: method and itty path (`/runs/:id`, `/runs/:id/files/*`). */
export interface RegisteredRoute {
  method: string;
  path: string;
}

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
 * import { queryBodySchema } from './openapi.ts';
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

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (schema: Json) => ({ 'application/json': { schema } });
const errorResponse = (description: string, headers?: Json): Json => ({ description, ...(headers ? { headers } : {}), content: jsonContent(ref('Error')) });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const idParam = { name: 'id', in: 'path', required: true, description: 'A run id (`run_...`).', schema: { type: 'string' } };
const eventStream = (description: string): Json => ({
  description,
  headers: { 'X-Run-Id': header('XRunId') },
  content: {
    'text/event-stream': {
      schema: { type: 'string', description: 'Events `id: <n>`, `event: <type>`, `data: <one-line JSON>`, a blank line; `: ping` after 15 s of silence. Each data object is a StreamEvent (docs/api.md#event-stream).' },
      'x-sandcaster-event': ref('StreamEvent'),
    },
  },
});
/** Errors every keyed route can answer before its handler runs. */
const guarded = { '401': response('Unauthorized'), '403': response('ForbiddenOrigin') };

interface Operation {
  method: 'get' | 'post';
  /** OpenAPI path template (`/runs/{id}`). */
  path: string;
  operation: Json;
}

/** Every operation the server may serve; `buildOpenApi` keeps those the router has. */
function operations(): Operation[] {
  const detach = Object.hasOwn(querySchema.entries, 'detach');
  return [
    {
      method: 'get',
      path: '/health',
      operation: {
        operationId: 'health',
        summary: 'Liveness and readiness',
        security: [],
        responses: {
          '200': { description: 'Serving.', content: jsonContent(ref('Health')) },
          '503': { description: 'Draining: shutting down.', content: jsonContent(ref('Health')) },
        },
      },
    },
    {
      method: 'post',
      path: '/query',
      operation: {
        operationId: 'query',
        summary: 'Run an agent in a fresh sandbox and stream every step',
        description: 'Checks before the stream starts, in order: 401/403, 413, 415, 400, 503 DRAINING, 503 NOT_CONFIGURED, 429 TOO_MANY_RUNS, 429 SANDBOX_MEMORY_FULL, 503 STORAGE_ERROR (docs/api.md#errors). Later failures end the stream with an `error` event.',
        requestBody: { required: true, content: jsonContent(ref('QueryBody')) },
        responses: {
          '200': eventStream('The run, as Server-Sent Events, ending with exactly one `result` or `error` event.'),
          ...(detach
            ? {
                '202': {
                  description: 'Detached (`detach: true`): the run is recorded and goes on without this connection.',
                  headers: { Location: header('Location'), 'X-Run-Id': header('XRunId') },
                  content: jsonContent(ref('RunAccepted')),
                },
              }
            : {}),
          '400': response('InvalidRequest'),
          ...guarded,
          '413': errorResponse('PAYLOAD_TOO_LARGE: the body is over 16 MiB.'),
          '415': errorResponse('UNSUPPORTED_MEDIA_TYPE: a Content-Type that is not JSON.'),
          '429': errorResponse('TOO_MANY_RUNS (this instance runs its maximum of runs) or SANDBOX_MEMORY_FULL (the sandbox would not fit in the memory budget).', {
            'Retry-After': header('RetryAfter'),
          }),
          '503': errorResponse('DRAINING (shutting down), NOT_CONFIGURED (no model key or sandbox provider; `hint` says what to set) or STORAGE_ERROR (the run could not be recorded).', {
            'Retry-After': header('RetryAfter'),
          }),
        },
      },
    },
    {
      method: 'get',
      path: '/runs',
      operation: {
        operationId: 'listRuns',
        summary: "This instance's recent runs, newest first",
        parameters: [
          { name: 'limit', in: 'query', description: 'How many (empty is 400).', schema: { type: 'integer', minimum: 1, maximum: 200, default: 20 } },
          { name: 'status', in: 'query', description: 'Only runs with this status (empty is 400).', schema: { type: 'string', enum: [...RUN_STATUSES] } },
          { name: 'before', in: 'query', description: 'Page on: only the runs listed after this run (the last one of the previous page); a run id this instance does not hold is 400.', schema: { type: 'string', maxLength: 200 } },
        ],
        responses: {
          '200': { description: 'A bare JSON array of run records.', content: jsonContent({ type: 'array', items: ref('RunRecord') }) },
          '400': response('InvalidRequest'),
          ...guarded,
        },
      },
    },
    {
      method: 'get',
      path: '/runs/{id}',
      operation: {
        operationId: 'getRun',
        summary: 'One run',
        parameters: [idParam],
        responses: { '200': { description: 'The run record.', content: jsonContent(ref('RunRecord')) }, ...guarded, '404': response('NotFound') },
      },
    },
    {
      method: 'get',
      path: '/runs/{id}/events',
      operation: {
        operationId: 'runEvents',
        summary: "A run's stored events, then live ones while it is in flight here",
        parameters: [
          idParam,
          { name: 'Last-Event-ID', in: 'header', description: 'Cursor: events with a greater id are sent (wins over `after`).', schema: { type: 'string', pattern: '^[0-9]+$' } },
          { name: 'after', in: 'query', description: 'Cursor when there is no Last-Event-ID header.', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: {
          '200': eventStream('The stored events after the cursor, byte for byte as first sent, then live ones; ends after the terminal event.'),
          '400': response('InvalidRequest'),
          ...guarded,
          '404': response('NotFound'),
          '410': errorResponse("EVENTS_EXPIRED: retention removed this run's events."),
        },
      },
    },
    {
      method: 'post',
      path: '/runs/{id}/cancel',
      operation: {
        operationId: 'cancelRun',
        summary: 'Cancel a run in flight on this instance',
        parameters: [idParam],
        responses: {
          '202': { description: 'The run ends within 2 s with terminal error CANCELLED.', content: jsonContent(ref('CancelAccepted')) },
          ...guarded,
          '404': response('NotFound'),
          '409': errorResponse('ALREADY_FINISHED: the run has ended; the message names its status.'),
        },
      },
    },
    {
      method: 'get',
      path: '/runs/{id}/files/{path}',
      operation: {
        operationId: 'getRunFile',
        summary: 'The bytes of a file the run returned',
        parameters: [idParam, { name: 'path', in: 'path', required: true, description: 'Path relative to /workspace, as in the `file` event (may contain `/`).', schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'The file, with Content-Disposition: attachment and ETag: "<sha256>".',
            headers: { ETag: { description: 'The sha256 of the bytes, quoted.', schema: { type: 'string' } } },
            content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
          },
          '304': { description: 'If-None-Match matched the ETag.' },
          ...guarded,
          '404': response('NotFound'),
          '410': errorResponse('EVENTS_EXPIRED: retention removed the bytes (the run record still lists the file).'),
        },
      },
    },
    {
      method: 'get',
      path: '/metrics',
      operation: {
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        responses: { '200': { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } }, ...guarded },
      },
    },
    {
      method: 'post',
      path: '/webhooks/e2b',
      operation: {
        operationId: 'e2bWebhook',
        summary: 'E2B sandbox lifecycle events',
        description: '404 unless SANDCASTER_E2B_WEBHOOK_SECRET is set. Needs no API key: the e2b-signature header (base64url SHA-256 of the secret followed by the raw body) is checked instead (docs/api.md#e2b-webhook).',
        security: [],
        parameters: [
          { name: 'e2b-signature', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'e2b-delivery-id', in: 'header', description: 'A repeated delivery is acknowledged, not acted on twice.', schema: { type: 'string' } },
        ],
        requestBody: {
          required: true,
          content: jsonContent({
            type: 'object',
            required: ['type', 'sandboxId'],
            properties: {
              id: { type: 'string' },
              type: { type: 'string', examples: ['sandbox.lifecycle.killed'] },
              sandboxId: { type: 'string' },
              eventData: { type: 'object' },
              timestamp: { type: 'string' },
            },
          }),
        },
        responses: {
          '200': { description: 'Accepted.', content: jsonContent({ type: 'object', required: ['ok'], properties: { ok: { const: true }, duplicate: { type: 'boolean' } } }) },
          '400': response('InvalidRequest'),
          '401': errorResponse('UNAUTHORIZED: missing or bad e2b-signature.'),
          '404': errorResponse('NOT_FOUND: no webhook secret is configured.'),
          '413': errorResponse('PAYLOAD_TOO_LARGE: over 1 MiB.'),
        },
      },
    },
    {
      method: 'get',
      path: '/openapi.json',
      operation: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': { description: 'The OpenAPI 3.1 document.', content: jsonContent({ type: 'object' }) }, ...guarded },
      },
    },
    {
      method: 'get',
      path: '/',
      operation: {
        operationId: 'dashboard',
        summary: 'The runs dashboard (HTML page)',
        description: 'Static, holds no data, needs no key; the page asks for the key and sends it on its API calls (README "Dashboard").',
        security: [],
        responses: { '200': { description: 'The dashboard page.', content: { 'text/html': { schema: str } } } },
      },
    },
    {
      method: 'get',
      path: '/ui/{file}',
      operation: {
        operationId: 'dashboardAsset',
        summary: "The dashboard's scripts and style sheet",
        security: [],
        parameters: [{ name: 'file', in: 'path', required: true, schema: str }],
        responses: {
          '200': { description: 'A script or style sheet of the dashboard.', content: { 'text/javascript': { schema: str }, 'text/css': { schema: str } } },
          '404': response('NotFound'),
        },
      },
    },
  ];
}

const str = { type: 'string' };
const int = { type: 'integer', minimum: 0 };
const nullable = (type: string) => ({ type: [type, 'null'] });
const event = (type: string, properties: Json, required: string[]): Json => ({
  type: 'object',
  required: ['type', ...required],
  properties: { type: { const: type }, ...properties },
});

function schemas(opts: SchemaOptions): Json {
  const errorCodes = ['SANDBOX_ERROR', 'MODEL_ERROR', 'TIMEOUT', 'SANDBOX_LOST', 'SHUTDOWN', 'CANCELLED', 'INTERNAL'];
  const events: Record<string, Json> = {
    SystemEvent: event('system', { subtype: str, content: str, runId: str, model: str, provider: str, sandboxProvider: str, sandbox: str, sandboxId: str }, ['subtype', 'content']),
    AssistantEvent: event('assistant', { subtype: { const: 'delta' }, content: str }, ['subtype', 'content']),
    ThinkingEvent: event('thinking', { content: str }, ['content']),
    ToolUseEvent: event('tool_use', { id: str, toolName: str, input: { type: 'object' }, sandbox: str }, ['id', 'toolName', 'input', 'sandbox']),
    ToolResultEvent: event(
      'tool_result',
      { id: str, toolName: str, content: str, isError: { type: 'boolean' }, exitCode: nullable('integer'), sandbox: str },
      ['id', 'toolName', 'content', 'isError', 'sandbox'],
    ),
    FileEvent: event('file', { path: str, size: int, encoding: { enum: ['utf8', 'base64'] }, content: str }, ['path', 'size', 'encoding', 'content']),
    WarningEvent: event('warning', { code: str, content: str }, ['code', 'content']),
    ResultEvent: event(
      'result',
      {
        subtype: { enum: ['success', 'max_turns'] },
        content: str,
        structuredOutput: {},
        runId: str,
        model: str,
        numTurns: int,
        inputTokens: int,
        outputTokens: int,
        cacheReadTokens: int,
        cacheWriteTokens: int,
        costUsd: nullable('number'),
        durationSecs: { type: 'number' },
      },
      ['subtype', 'content', 'runId', 'model', 'numTurns', 'inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'costUsd', 'durationSecs'],
    ),
    ErrorEvent: event('error', { code: { enum: errorCodes }, content: str, hint: str }, ['code', 'content']),
  };
  return {
    QueryBody: queryBodySchema(opts).schema,
    Error: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]*$' },
            message: str,
            details: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: str, message: str } } },
            hint: str,
          },
        },
      },
    },
    Health: { type: 'object', required: ['status', 'version'], properties: { status: { enum: ['ok', 'draining'] }, version: str, runsInFlight: int } },
    RunRecord: {
      type: 'object',
      required: ['id', 'prompt', 'model', 'provider', 'sandboxProvider', 'status', 'startedAt'],
      properties: {
        id: str,
        prompt: { type: 'string', description: 'On /runs, at most the first 500 characters once durable runs land (then see promptChars).' },
        promptChars: int,
        model: str,
        provider: str,
        sandboxProvider: str,
        sandboxId: nullable('string'),
        status: { enum: [...RUN_STATUSES] },
        errorCode: nullable('string'),
        error: nullable('string'),
        costUsd: nullable('number'),
        inputTokens: int,
        outputTokens: int,
        cacheReadTokens: int,
        cacheWriteTokens: int,
        numTurns: int,
        durationSecs: nullable('number'),
        filesCount: int,
        sandboxCount: int,
        startedAt: { type: 'string', format: 'date-time' },
        completedAt: { type: ['string', 'null'], format: 'date-time' },
        result: nullable('string'),
        structuredOutput: {},
        warnings: { type: 'array', items: { type: 'object', properties: { code: str, content: str } } },
        files: { type: 'array', items: { type: 'object', properties: { path: str, size: int, sha256: str } } },
        lastEventId: int,
        eventsExpired: { type: 'boolean' },
      },
    },
    RunAccepted: {
      type: 'object',
      required: ['runId', 'status', 'eventsUrl', 'runUrl'],
      properties: { runId: str, status: { const: 'running' }, eventsUrl: str, runUrl: str },
    },
    CancelAccepted: { type: 'object', required: ['runId', 'status'], properties: { runId: str, status: { const: 'cancelling' } } },
    ...events,
    StreamEvent: { oneOf: Object.keys(events).map(ref), discriminator: { propertyName: 'type' } },
  };
}

/** The run record POSTed to a request's callbackUrl when the run ends (docs/api.md#durable-runs). */
function callbackWebhooks(): Json | undefined {
  if (!Object.hasOwn(querySchema.entries, 'callbackUrl')) return undefined;
  return {
    runFinished: {
      post: {
        summary: 'A run with callbackUrl ended',
        description: 'Retried after about 1 s, 5 s, 30 s and 2 min on a non-2xx answer, a network error or no answer within 10 s.',
        parameters: [
          { name: 'Sandcaster-Delivery', in: 'header', required: true, description: 'The same on every retry of one delivery.', schema: str },
          { name: 'Sandcaster-Signature', in: 'header', description: 't=<unix seconds>,v1=<hex HMAC-SHA256(SANDCASTER_CALLBACK_SECRET, "<t>.<body>")>; absent without a secret.', schema: str },
        ],
        requestBody: { required: true, content: jsonContent({ allOf: [ref('RunRecord'), { type: 'object', required: ['type'], properties: { type: { const: 'run.finished' } } }] }) },
        responses: { '200': { description: 'Any 2xx acknowledges the delivery.' } },
      },
    },
  };
}

/** `/runs/:id/files/*` and `/runs/:id/files/:path+` -> `/runs/{id}/files/{path}`. */
export function openApiPath(ittyPath: string): string {
  if (ittyPath === '') return '/'; // itty keeps the root route's path as ''
  return ittyPath.replace(/:(\w+)\+?/g, '{$1}').replace(/\/\*$/, '/{path}');
}

/**
 * The document for the routes the router has. `undocumented` lists registered routes without an operation
 * here (HEAD is covered by GET).
 *
 * @example Usage
 * ```ts
 * import { buildOpenApi } from './openapi.ts';
 * const { document, undocumented } = buildOpenApi([{ method: 'GET', path: '/health' }]);
 * console.log(Object.keys(document.paths as object), undocumented); // [ '/health' ] []
 * ```
 */
export function buildOpenApi(routes: readonly RegisteredRoute[], opts: SchemaOptions = {}): { document: Json; undocumented: RegisteredRoute[] } {
  const wanted = new Map<string, RegisteredRoute>();
  for (const r of routes) {
    const method = r.method.toLowerCase();
    if (method === 'head' || method === 'options' || method === 'all') continue;
    wanted.set(`${method} ${openApiPath(r.path)}`, r);
  }
  const paths: Record<string, Json> = {};
  for (const op of operations()) {
    const key = `${op.method} ${op.path}`;
    if (!wanted.has(key)) continue;
    wanted.delete(key);
    (paths[op.path] ??= {})[op.method] = op.operation;
  }
  const webhooks = callbackWebhooks();
  const document: Json = {
    openapi: '3.1.1',
    info: {
      title: 'Sandcaster',
      version: VERSION,
      summary: 'Runs AI agents in isolated sandboxes and streams every step as Server-Sent Events.',
      description:
        'Every response carries X-Sandcaster-Instance. Errors share one shape (components.schemas.Error; codes in docs/api.md#error-codes). ' +
        'With SANDCASTER_API_KEY unset the API is open and bearerAuth is not required.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearerAuth: [] }],
    paths,
    ...(webhooks ? { webhooks } : {}),
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'SANDCASTER_API_KEY, compared in constant time.' } },
      schemas: schemas(opts),
      responses: {
        InvalidRequest: errorResponse('INVALID_REQUEST: bad JSON or a field breaking the rules; `details` lists each field path and why.'),
        Unauthorized: errorResponse('UNAUTHORIZED: missing or wrong bearer key.', { 'WWW-Authenticate': { schema: { type: 'string', const: 'Bearer realm="sandcaster"' } } }),
        ForbiddenOrigin: errorResponse('FORBIDDEN_ORIGIN: the API is open (no key) and the request came from a foreign Origin or Host; the hint names SANDCASTER_CORS_ORIGINS or SANDCASTER_ALLOWED_HOSTS.'),
        NotFound: errorResponse('NOT_FOUND: no such run (or file) on this instance.'),
      },
      headers: {
        XRunId: { description: 'The run id.', schema: str },
        RetryAfter: { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
        Location: { description: 'The run: /runs/<id>.', schema: str },
      },
    },
  };
  return { document, undocumented: [...wanted.values()] };
}
