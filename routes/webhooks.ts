// POST /webhooks/e2b: E2B sandbox lifecycle events. 404 unless a secret is configured; signed with it.
import { RunAbort } from '../lib/abort.ts';
import { apiError, json } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import type { AppContext } from '../lib/run.ts';
import { DeliveryLog, verifyE2bSignature } from '../lib/webhook.ts';

const MAX_WEBHOOK_BYTES = 1024 * 1024;
// One delivery log per app (tests run several apps in one process).
const deliveryLogs = new WeakMap<AppContext, DeliveryLog>();

export async function e2bWebhook(req: Request, app: AppContext): Promise<Response> {
  const secret = app.config.webhookSecret;
  if (!secret) return apiError(404, 'NOT_FOUND', 'no route for POST /webhooks/e2b (set SANDCASTER_E2B_WEBHOOK_SECRET to enable it)');
  const raw = new Uint8Array(await req.arrayBuffer());
  if (raw.byteLength > MAX_WEBHOOK_BYTES) return apiError(413, 'PAYLOAD_TOO_LARGE', 'webhook body too large');
  if (!verifyE2bSignature(secret, raw, req.headers.get('e2b-signature'))) {
    log.warn('e2b webhook rejected: bad or missing signature', { deliveryId: req.headers.get('e2b-delivery-id') ?? undefined });
    return apiError(401, 'UNAUTHORIZED', 'missing or invalid e2b-signature');
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(Buffer.from(raw).toString('utf8'));
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
  } catch {
    return apiError(400, 'INVALID_REQUEST', 'the webhook body is not a JSON object');
  }
  const type = typeof body.type === 'string' ? body.type : undefined;
  const sandboxId = typeof body.sandboxId === 'string' ? body.sandboxId : undefined;
  if (!type || !sandboxId) {
    return apiError(400, 'INVALID_REQUEST', 'the webhook body needs string fields type and sandboxId', {
      details: [...(type ? [] : [{ path: 'type', message: 'is required' }]), ...(sandboxId ? [] : [{ path: 'sandboxId', message: 'is required' }])],
    });
  }
  const deliveryId = req.headers.get('e2b-delivery-id') ?? (typeof body.id === 'string' ? body.id : undefined);
  const eventData = body.eventData as { sandbox_metadata?: Record<string, unknown> } | undefined;
  const meta = eventData?.sandbox_metadata ?? {};
  const fields = { deliveryId, eventId: body.id, type, sandboxId, runId: meta['sandcaster.run'] };
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
