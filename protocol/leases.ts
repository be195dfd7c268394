// Leases (an edge9p extension; plain 9P clients never see it): the share's
// object lets a client cache what it was told about an inode until the
// object recalls it, as NFSv4 delegations and AFS callbacks do. The object
// sees every change to the share, so it can recall before a change is
// acknowledged; the client then answers from its cache what it would
// otherwise cross the WAN for (docs/leases.md has the whole protocol and why).
//
// Negotiation: a client that can hold leases sends `X-Edge9p-Leases: 1` on
// the WebSocket upgrade (a new session and a resume alike); a gateway that
// grants them answers `X-Edge9p-Leases: <term ms>`. Without that answer the
// client caches nothing. Only 9P2000.L sessions get grants.
//
// The messages are text WebSocket messages (9P messages are binary), JSON
// objects whose `lease` field names the kind. A WebSocket keeps order, so a
// grant sent just before a reply reaches the client before it, and a recall
// sent before a reply to the changer reaches the changer before it.
//
// What a lease on an inode covers: its Rgetattr attributes, and for a
// directory its entries (the name -> qid a walk resolves, the listing a
// Treaddir returns). A change to any of those recalls the lease.

/** Request header: the client can hold leases. */
export const LEASES_HEADER = "X-Edge9p-Leases";

/** Auto-answered renewal (the object can answer it while hibernating). */
export const LEASE_RENEW = '{"lease":"renew"}';
export const LEASE_RENEWED = '{"lease":"renewed"}';

/**
 * gateway -> client, sent just before the binary reply with this tag: the
 * client may cache what that reply says about these inodes (qid.path as
 * decimal strings), until recalled or until the term runs out.
 */
export interface LeaseGrant {
  lease: "grant";
  tag: number;
  q: string[];
}

/**
 * gateway -> client: stop using what is cached about these inodes (or, with
 * `all`, about every inode), then answer with a LeaseAck of the same n.
 */
export interface LeaseRecall {
  lease: "recall";
  n: number;
  q?: string[];
  all?: true;
}

/** client -> gateway: the recall numbered n is applied. */
export interface LeaseAck {
  lease: "ack";
  n: number;
}

/** client -> gateway: the client dropped these on its own (its cache's bound). */
export interface LeaseRelease {
  lease: "release";
  q: string[];
}

export type LeaseMessage = LeaseGrant | LeaseRecall | LeaseAck | LeaseRelease;

/** Most inodes named by one message: a bound for the parser, not a policy. */
export const LEASE_MAX_NAMED = 4096;

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
const INO = /^(0|[1-9][0-9]{0,19})$/;
const isInos = (q: unknown): q is string[] =>
  Array.isArray(q) && q.length <= LEASE_MAX_NAMED && q.every((x) => typeof x === "string" && INO.test(x));

/** Whether a text message is a lease message at all (cheap: before JSON). */
export function isLeaseText(text: string): boolean {
  return text.startsWith('{"lease":');
}

/** Parses a lease message; throws with the reason when it is not a valid one. */
export function parseLease(text: string): LeaseMessage {
  if (!isLeaseText(text)) throw new Error("lease: not a lease message");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("lease: the text message is not JSON");
  }
  const m = v as Record<string, unknown>;
  switch (m.lease) {
    case "grant":
      if (!isCount(m.tag) || m.tag > 0xffff || !isInos(m.q)) throw new Error("lease: grant needs {tag, q}");
      return { lease: "grant", tag: m.tag, q: m.q };
    case "recall":
      if (!isCount(m.n)) throw new Error("lease: recall needs n");
      if (m.all === true) return { lease: "recall", n: m.n, all: true };
      if (!isInos(m.q)) throw new Error("lease: recall needs q or all");
      return { lease: "recall", n: m.n, q: m.q };
    case "ack":
      if (!isCount(m.n)) throw new Error("lease: ack needs n");
      return { lease: "ack", n: m.n };
    case "release":
      if (!isInos(m.q)) throw new Error("lease: release needs q");
      return { lease: "release", q: m.q };
    default:
      throw new Error(`lease: unknown kind ${JSON.stringify(m.lease)}`);
  }
}

/** Encodes a lease message (the field order isLeaseText expects). */
export function leaseText(m: LeaseMessage): string {
  return JSON.stringify(m);
}
