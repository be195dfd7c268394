// Tversion negotiation: which dialect, which msize, and why msize was lowered.

import { MIN_MSIZE, PLATFORM_MSIZE_CEILING, PLATFORM_MSIZE_CEILING_SOURCE } from "./constants.ts";
import type { Dialect } from "./dialect.ts";

/**
 * Headers of the gateway's answer to the WebSocket upgrade: the largest
 * msize it will agree to and why (the operator's cap or the platform's
 * ceiling), so a client can explain a lowered msize before Tversion.
 */
export const MSIZE_MAX_HEADER = "X-Edge9p-Msize-Max";
export const MSIZE_REASON_HEADER = "X-Edge9p-Msize-Reason";

export interface NegotiationLimits {
  /** The operator's msize cap (configuration). */
  cap: number;
  /** Where the cap comes from, for the message that explains a lowered msize. */
  capSource?: string;
  /** The platform ceiling; tests may lower it. */
  ceiling?: number;
}

export type Negotiated =
  | {
      ok: true;
      /** The dialect, or "unknown" when the client's version is not understood. */
      version: Dialect | "unknown";
      msize: number;
      /** Set when msize is lower than the client asked, with the reason. */
      lowered: { from: number; to: number; by: "platform" | "operator"; reason: string } | null;
    }
  | { ok: false; reason: string };

const decoder = new TextDecoder();

/**
 * version(5): a version string is "9P" digits, optionally "." and an
 * extension. The server answers with a version it speaks, by prefix:
 * "9P2000.L..." -> 9P2000.L, "9P2000.u..." -> 9P2000.u, any other
 * "9P2000" or "9P2000.x" -> 9P2000; anything else -> "unknown".
 */
export function matchVersion(version: string | Uint8Array): Dialect | "unknown" {
  const v = typeof version === "string" ? version : decoder.decode(version);
  if (v.startsWith("9P2000.L")) return "9P2000.L";
  if (v.startsWith("9P2000.u")) return "9P2000.u";
  if (v === "9P2000" || v.startsWith("9P2000.")) return "9P2000";
  return "unknown";
}

/**
 * msize = min(client's, platform ceiling, operator cap). A client msize below
 * 4096 is refused: Linux itself never asks for less and rejects a smaller
 * answer (net/9p/client.c), and no useful reply fits.
 */
export function negotiate(
  clientMsize: number,
  clientVersion: string | Uint8Array,
  limits: NegotiationLimits,
): Negotiated {
  const version = matchVersion(clientVersion);
  if (clientMsize < MIN_MSIZE) {
    return { ok: false, reason: `msize ${clientMsize} is below the minimum of ${MIN_MSIZE}` };
  }
  const ceiling = limits.ceiling ?? PLATFORM_MSIZE_CEILING;
  let msize = clientMsize;
  let lowered: Extract<Negotiated, { ok: true }>["lowered"] = null;
  if (ceiling < msize && ceiling <= limits.cap) {
    msize = ceiling;
    lowered = {
      from: clientMsize,
      to: msize,
      by: "platform",
      reason: `platform ceiling ${ceiling}: ${PLATFORM_MSIZE_CEILING_SOURCE}`,
    };
  } else if (limits.cap < msize) {
    msize = limits.cap;
    lowered = {
      from: clientMsize,
      to: msize,
      by: "operator",
      reason: `operator cap ${limits.cap}${limits.capSource ? ` (${limits.capSource})` : ""}`,
    };
  }
  return { ok: true, version, msize, lowered };
}
