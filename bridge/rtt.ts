// A round-trip model for local runs (`edge9p bridge --simulate-rtt MS`): a
// guest that mounts an edge share is 10-50 ms from the gateway, and Linux's
// 9p client waits for each reply before it sends the next request, so what
// a workload costs there is its requests times the round trip. Locally the
// bridge and gateway are microseconds apart; holding every message half the
// round trip each way makes a local run pay what a distant one pays, so that
// the requests a mount sends (and what saves them) can be judged here.
//
// Only for a gateway on this machine: one elsewhere is already at a
// distance, and a bridge in front of real users must not slow them down.

/** Hosts that are this machine. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** Why `--simulate-rtt` cannot be used with `url`, or null when it can (or is 0). */
export function refusedRtt(url: string, rttMs: number): string | null {
  if (rttMs === 0) return null;
  if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > 10_000) return `--simulate-rtt wants milliseconds from 0 to 10000 (got ${rttMs})`;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return `--simulate-rtt: ${url} is not a URL`;
  }
  if (LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host)) return null;
  return `--simulate-rtt is for a gateway on this machine (a development setting): ${host} is not loopback, and a gateway elsewhere is already at a distance`;
}

/**
 * Runs callbacks `ms` after they are handed over, in the order they came
 * (one timer per message; Node fires timers of one duration in the order
 * they were set). At 0 each runs at once, so a bridge without the model
 * behaves exactly as before.
 */
export function delayLine(ms: number): { later(f: () => void): void } {
  if (ms <= 0) return { later: (f) => f() };
  return { later: (f) => void setTimeout(f, ms) };
}
