// Small builders the OpenAPI document's paths and schemas share: references, JSON content, error
// responses, the event-stream response and the event-object shape.
export type Json = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const jsonContent = (schema: Json) => ({ 'application/json': { schema } });
export const errorResponse = (description: string, headers?: Json): Json => ({ description, ...(headers ? { headers } : {}), content: jsonContent(ref('Error')) });
export const response = (name: string) => ({ $ref: `#/components/responses/${name}` });
export const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
export const idParam = { name: 'id', in: 'path', required: true, description: 'A run id (`run_...`).', schema: { type: 'string' } };
export const eventStream = (description: string): Json => ({
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
export const guarded = { '401': response('Unauthorized'), '403': response('ForbiddenOrigin') };

export const str = { type: 'string' };
export const int = { type: 'integer', minimum: 0 };
export const nullable = (type: string) => ({ type: [type, 'null'] });
export const event = (type: string, properties: Json, required: string[]): Json => ({
  type: 'object',
  required: ['type', ...required],
  properties: { type: { const: type }, ...properties },
});
