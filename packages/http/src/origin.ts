/**
 * Cross-site request refusal. Uploading and running a script is code execution by design, so a
 * page on another site must not do it through a signed-in analyst's browser. Browsers send simple
 * cross-site POSTs (form-encoded, text/plain, multipart) without a CORS preflight, so CORS alone
 * does not stop them; the `Sec-Fetch-Site` and `Origin` headers, which a page cannot forge, do.
 */
import type { RouteOptions } from './types.js';

export type TrustedOrigins = RouteOptions<unknown>['trustedOrigins'];

function isTrusted(origin: string, trusted: TrustedOrigins): boolean {
  if (trusted === undefined) return false;
  if (typeof trusted === 'function') return trusted(origin) === true;
  return trusted.includes(origin);
}

/**
 * Why a state-changing request must be refused, or null when it may go on. Requests without any
 * browser signal (curl, a server calling the API) are not a browser's cross-site request.
 */
export function crossSiteReason(headers: { get(name: string): string | null }, trusted: TrustedOrigins): string | null {
  const origin = headers.get('origin');
  if (origin !== null && origin !== 'null' && isTrusted(origin, trusted)) return null;
  const site = headers.get('sec-fetch-site');
  // Browsers that send Sec-Fetch-Site are authoritative about it, also behind proxies that rewrite Host.
  if (site === 'same-origin' || site === 'none') return null;
  if (site === 'cross-site' || site === 'same-site') return `the browser marked it ${site} (Origin ${origin ?? 'absent'})`;
  if (origin === null) return null;
  if (origin === 'null') return 'it comes from an opaque origin (Origin: null)';
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return `its Origin header is not a URL (${origin.slice(0, 100)})`;
  }
  // Host only, not the scheme: behind a TLS-terminating proxy the server sees http for an https page.
  const host = headers.get('x-forwarded-host')?.split(',')[0]!.trim() ?? headers.get('host');
  return originHost === host ? null : `it comes from ${origin}, another origin than this server (${host ?? 'no Host header'})`;
}
