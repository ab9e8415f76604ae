// The one SSE response of the API, for /query and /runs/:id/events alike: a reader's EventStream as a body.
import type { EventStream } from '../lib/sse.ts';

export function sseResponse(runId: string, stream: EventStream): Response {
  return new Response(stream.body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no', // nginx: pass events through as they come
      'x-run-id': runId,
    },
  });
}
