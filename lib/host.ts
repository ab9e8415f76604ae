// The Host request header, parsed on its own: the request URL is never built from it.
import { isIP } from 'node:net';

export interface HostHeader {
  /** Lowercase, without a trailing dot; an IPv6 literal keeps its brackets. */
  name: string;
  port?: number;
  /** An IPv4 or IPv6 literal: DNS rebinding needs a name, so these are safe to serve to anyone. */
  ip: boolean;
}

// reg-name as real clients send it: dot-separated labels of letters, digits, `-` and `_` (Compose service
// names), at most 253 characters. Percent-encoding and sub-delims, legal in theory, are refused.
const NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/**
 * Parses one Host value (`name`, `name:port`, `1.2.3.4:80`, `[::1]:8000`); null when it is malformed.
 *
 * @example
 * parseHost('LocalHost:8000'); // { name: 'localhost', port: 8000, ip: false }
 * parseHost('a b'); // null
 */
export function parseHost(value: string): HostHeader | null {
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) return null;
  const raw = m[1]!.toLowerCase();
  if (raw.startsWith('[')) return isIP(raw.slice(1, -1)) === 6 ? { name: raw, port, ip: true } : null;
  if (raw.length === 0 || raw.length > 253 || !NAME.test(raw)) return null;
  const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  return { name, port, ip: isIP(name) === 4 };
}

/** `localhost`, an IP literal, or an entry of the allowed list (`name` alone, or `name:port` exactly). */
export function isTrustedHost(host: HostHeader, allowed: readonly string[]): boolean {
  if (host.ip || host.name === 'localhost') return true;
  return allowed.includes(host.name) || (host.port !== undefined && allowed.includes(`${host.name}:${host.port}`));
}
