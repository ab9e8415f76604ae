// Who may call the API: the bearer key when one is set; without a key, anyone except a browser page that is
// not on the operator's lists. See docs/api.md#authentication.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isTrustedHost, parseHost } from './host.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Constant-time: the comparison does not reveal how many leading characters matched, nor (by hashing both
 * sides first) the key's length.
 */
export function bearerMatches(header: string | null, key: string): boolean {
  const m = /^Bearer[ ]+(.+)$/i.exec(header ?? '');
  const given = m ? m[1]!.trim() : '';
  // Always compare, even for a missing header, so timing says nothing either way.
  return timingSafeEqual(digest(given), digest(key)) && given.length > 0;
}

export interface BrowserRefusal {
  message: string;
  hint: string;
}

/**
 * For an open API (no key): why a request looks browser-borne and unwanted, or null when it may proceed.
 * A browser names the page's origin in `Origin` on every cross-origin POST (a form POST needs no preflight)
 * and always sends `Host`; a page that rebinds its own DNS name to this server still sends its own name as
 * `Host`. Requests without `Origin` from an IP literal, `localhost` or an allowed name are not browser
 * attacks: curl, SDKs and load balancer checks keep working. A missing Host (HTTP/1.0) is not a browser.
 */
export function refuseBrowser(headers: Headers, opts: { corsOrigins: readonly string[]; allowedHosts: readonly string[] }): BrowserRefusal | null {
  const origin = headers.get('origin');
  if (origin !== null && !opts.corsOrigins.includes(origin) && !sameOrigin(origin, headers.get('host'))) {
    return {
      message: `requests from the browser origin ${JSON.stringify(origin.slice(0, 200))} are refused while the API has no key`,
      hint: 'add the origin to SANDCASTER_CORS_ORIGINS, or set SANDCASTER_API_KEY',
    };
  }
  const raw = headers.get('host');
  const host = raw === null ? null : parseHost(raw);
  if (host && !isTrustedHost(host, opts.allowedHosts)) {
    return {
      message: `requests for the host name ${JSON.stringify(host.name)} are refused while the API has no key (a page could rebind that name to this server)`,
      hint: `add ${host.name} to SANDCASTER_ALLOWED_HOSTS, or set SANDCASTER_API_KEY`,
    };
  }
  return null;
}

/**
 * The server's own dashboard: a page served from this very host (its Origin names the Host it sends). A
 * foreign page names itself instead, and a page that rebinds its own name here still fails the Host check.
 */
function sameOrigin(origin: string, host: string | null): boolean {
  if (host === null || !/^https?:\/\/[^/]+$/.test(origin)) return false;
  return origin.slice(origin.indexOf('//') + 2).toLowerCase() === host.toLowerCase();
}
