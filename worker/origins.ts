// Which names the gateway answers for, and which web pages may drive it.
//
// A browser lets any page open a WebSocket to any address and send "simple"
// cross-origin POSTs (text/plain, forms) without asking the server first
// (Fetch standard, CORS-safelisted requests; WebSockets have no CORS at
// all). It always says who is asking, in `Origin` (RFC 6454 section 7), so
// the gateway refuses a page that is not its own (cross-site WebSocket
// hijacking). A name the attacker controls can also be made to resolve to
// the gateway's address (DNS rebinding): the page is then same-origin with
// that name, and only the Host it sends gives it away, so the gateway
// answers only for its own names (RFC 9110 section 15.5.20: 421 Misdirected
// Request, "not able to produce a response for this target URI").
//
// The gateway's own origin is built from the request's URL only after its
// host passed the check: from an unchecked Host a rebinding page would be
// "same-origin" by construction.

import type { Config } from "./config.ts";

/** Loopback: 127.0.0.0/8 (RFC 1122 section 3.2.1.3), ::1 (RFC 4291 section 2.5.3), localhost (RFC 6761 section 6.3). */
function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** The host names a configuration names: allowed_hosts and base_url's host. */
function namedHosts(config: Config): string[] {
  const names = [...config.allowed_hosts];
  if (config.base_url) names.push(new URL(config.base_url).hostname);
  return names;
}

/**
 * Why the gateway does not answer for the request's host, or null when it
 * does. `url` is the request's URL, whose host is the Host header (workerd
 * builds it from that, locally and on Cloudflare).
 */
export function refusedHost(config: Config, url: URL): string | null {
  const host = url.hostname.toLowerCase();
  const named = namedHosts(config);
  if (named.includes(host)) return null;
  if (config.deployed) {
    // Cloudflare routes a request to a worker by its host name (workers.dev,
    // routes, custom domains), so without names of our own any host that
    // arrives is one the account routed here; a rebinding name would reach
    // the other name's zone, never this worker.
    if (named.length === 0) return null;
    return `this gateway does not answer for host ${host}: a deployed gateway answers for EDGE9P.allowed_hosts and base_url's host`;
  }
  if (isLoopback(host)) return null;
  return `this gateway does not answer for host ${host}: a local gateway answers for loopback addresses, localhost and EDGE9P.allowed_hosts`;
}

/** Whether a request must come from an allowed origin: a WebSocket upgrade, or anything but GET and HEAD. */
export function needsOriginCheck(req: Request): boolean {
  return req.headers.get("Upgrade")?.toLowerCase() === "websocket" || (req.method !== "GET" && req.method !== "HEAD");
}

/**
 * Why a request's Origin may not drive the gateway, or null when it may:
 * no Origin (programs: the bridge, the CLI, curl), the gateway's own origin
 * (from the checked host), base_url's origin, or one of allowed_origins.
 * Anything else, "null" included (sandboxed frames, file: pages), is refused.
 */
export function refusedOrigin(config: Config, url: URL, origin: string | null): string | null {
  if (origin === null) return null;
  const own = [url.origin, ...config.allowed_origins];
  if (config.base_url) own.push(new URL(config.base_url).origin);
  if (own.includes(origin.toLowerCase())) return null;
  // The header's text is the page's own origin: a browser page cannot choose it.
  const shown = origin.length <= 200 ? origin : `${origin.slice(0, 200)}...`;
  return `requests from origin ${shown} are refused: it is not this gateway's origin or one of EDGE9P.allowed_origins`;
}
