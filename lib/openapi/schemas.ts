// The document's components.schemas (request body, error, health, run record, every stream event) and
// the callback webhook a run with callbackUrl triggers.
import { querySchema } from '../request.ts';
import { RUN_STATUSES } from '../store.ts';
import { queryBodySchema, type SchemaOptions } from './body.ts';
import { event, int, jsonContent, nullable, ref, str, type Json } from './parts.ts';

export function schemas(opts: SchemaOptions): Json {
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
export function callbackWebhooks(): Json | undefined {
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
