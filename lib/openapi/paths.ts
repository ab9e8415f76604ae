// The hand-written operations of the OpenAPI document: one per route the server may serve, with its
// parameters and responses.
import { querySchema } from '../request.ts';
import { RUN_STATUSES } from '../store.ts';
import { errorResponse, eventStream, guarded, header, idParam, jsonContent, ref, response, str, type Json } from './parts.ts';

export interface Operation {
  method: 'get' | 'post';
  /** OpenAPI path template (`/runs/{id}`). */
  path: string;
  operation: Json;
}

/** Every operation the server may serve; `buildOpenApi` keeps those the router has. */
export function operations(): Operation[] {
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
