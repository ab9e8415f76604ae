// POST /webhooks/e2b: E2B sandbox lifecycle events. 404 unless a secret is configured; signed with it.
import { RunAbort } from '../lib/abort.ts';
import { readBody } from '../lib/body.ts';
import { apiError, json } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import type { AppContext } from '../lib/app-context.ts';
import { DeliveryLog, verifyE2bSignature } from '../lib/webhook.ts';

const MAX_WEBHOOK_BYTES = 1024 * 1024;
// One delivery log per app (tests run several apps in one process).
const deliveryLogs = new WeakMap<AppContext, DeliveryLog>();

export async function e2bWebhook(req: Request, app: AppContext): Promise<Response> {
  const secret = app.config.webhookSecret;
  if (!secret) return apiError(404, 'NOT_FOUND', 'no route for POST /webhooks/e2b (set SANDCASTER_E2B_WEBHOOK_SECRET to enable it)');
  // Unauthenticated bytes: capped (and timed by the body stream) before the signature is even computed.
  const body = await readBody(req, MAX_WEBHOOK_BYTES);
  if (!body.ok) return body.response;
  const raw = body.bytes;
  if (!verifyE2bSignature(secret, raw, req.headers.get('e2b-signature'))) {
    log.warn('e2b webhook rejected: bad or missing signature', { deliveryId: req.headers.get('e2b-delivery-id') ?? undefined });
    return apiError(401, 'UNAUTHORIZED', 'missing or invalid e2b-signature');
  }
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(raw.toString('utf8'));
    if (!event || typeof event !== 'object' || Array.isArray(event)) throw new Error('not an object');
  } catch {
    return apiError(400, 'INVALID_REQUEST', 'the webhook body is not a JSON object');
  }
  const type = typeof event.type === 'string' ? event.type : undefined;
  const sandboxId = typeof event.sandboxId === 'string' ? event.sandboxId : undefined;
  if (!type || !sandboxId) {
    return apiError(400, 'INVALID_REQUEST', 'the webhook body needs string fields type and sandboxId', {
      details: [...(type ? [] : [{ path: 'type', message: 'is required' }]), ...(sandboxId ? [] : [{ path: 'sandboxId', message: 'is required' }])],
    });
  }
  const deliveryId = req.headers.get('e2b-delivery-id') ?? (typeof event.id === 'string' ? event.id : undefined);
  const eventData = event.eventData as { sandbox_metadata?: Record<string, unknown> } | undefined;
  const meta = eventData?.sandbox_metadata ?? {};
  const fields = { deliveryId, eventId: event.id, type, sandboxId, runId: meta['sandcaster.run'] };
  let deliveries = deliveryLogs.get(app);
  if (!deliveries) deliveryLogs.set(app, (deliveries = new DeliveryLog()));
  if (deliveryId && !deliveries.firstTime(deliveryId)) {
    log.info('e2b webhook duplicate delivery ignored', fields);
    return json(200, { ok: true, duplicate: true });
  }
  log.info('e2b webhook', fields);
  if (type === 'sandbox.lifecycle.killed') {
    const run = app.runs.findBySandboxId(sandboxId);
    if (run && !run.controller.signal.aborted) {
      log.warn('sandbox killed underneath a run in flight', { runId: run.id, sandboxId });
      run.controller.abort(new RunAbort('SANDBOX_LOST', `sandbox ${sandboxId} was killed by E2B while the run was in flight`));
    }
  }
  return json(200, { ok: true });
}
