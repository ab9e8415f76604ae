// Bearer-token check for the API (docs/api.md#authentication). Constant-time: the comparison does not reveal how many
// leading characters matched, nor (by hashing both sides first) the key's length.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function bearerMatches(header: string | null, key: string): boolean {
  const m = /^Bearer[ ]+(.+)$/i.exec(header ?? '');
  const given = m ? m[1]!.trim() : '';
  // Always compare, even for a missing header, so timing says nothing either way.
  return timingSafeEqual(digest(given), digest(key)) && given.length > 0;
}
