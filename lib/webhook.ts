// E2B lifecycle webhooks (docs/api.md#e2b-webhook): signature check and de-duplication of deliveries.
import { createHash, timingSafeEqual } from 'node:crypto';

/** v1: SHA-256 over secret + raw body; base64url without padding (standard base64 without padding accepted). */
export function verifyE2bSignature(secret: string, rawBody: Uint8Array, header: string | null): boolean {
  // A signature is 43-44 characters; a longer header is refused before `/=+$/`, which is quadratic in a run of '='.
  if (!header || header.length > 128) return false;
  const digest = createHash('sha256').update(secret).update(rawBody).digest();
  const given = header.trim().replace(/=+$/, '');
  const forms = [digest.toString('base64url'), digest.toString('base64').replace(/=+$/, '')];
  let ok = false;
  for (const form of forms) {
    const a = Buffer.from(form);
    const b = Buffer.from(given);
    // Lengths of both forms are fixed (43), so an early length mismatch reveals nothing about the secret.
    if (a.length === b.length && timingSafeEqual(a, b)) ok = true;
  }
  return ok;
}

/** Remembers recent delivery ids (bounded), so a repeated delivery is acknowledged but not acted on twice. */
export class DeliveryLog {
  private seen = new Map<string, number>();
  constructor(private readonly max = 10_000) {}

  /** True the first time an id is seen. */
  firstTime(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.set(id, Date.now());
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }
}
