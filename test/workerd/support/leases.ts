// A lease client for the workerd tests (docs/leases.md): a WebSocket that
// asked for leases, the protocol client on its binary messages, and, in
// arrival order, every lease text and reply it got, so that a test can say
// what came before what. It acks recalls itself unless told not to.

import { Client, LEASES_HEADER, LEASE_RENEWED, type LeaseMessage, NOFID, NONUNAME, RESUME_HEADER, SECRET_HEADER, SESSION_HEADER, leaseText, parseLease } from "../../../protocol/index.ts";
import { HELLO, sleep, upgrade } from "./gateway.ts";

export type LeaseEvent = { kind: "lease"; m: LeaseMessage; at: number } | { kind: "reply"; tag: number; type: number; at: number };

export interface LeaseConn {
  client: Client;
  ws: WebSocket;
  /** The upgrade's X-Edge9p-Leases answer (the term in ms), or null. */
  term: string | null;
  /** A resumable session's resume token (with `resume: "new"`). */
  token: string;
  events: LeaseEvent[];
  closed: Promise<{ code: number; reason: string }>;
  /** Whether recalls are acked as they come. */
  autoAck: boolean;
  /** Acks recall `n`. */
  ack(n: number): void;
  /** Every lease message of a kind received so far. */
  leases<K extends LeaseMessage["lease"]>(kind: K): Extract<LeaseMessage, { lease: K }>[];
}

/**
 * Opens a session on `share` asking for leases (or not, with `ask` false),
 * mounted as fid 0; `resume` "new" makes it resumable, a token resumes one
 * (the hello sent, no Tversion: its fids are as it left them).
 */
export async function leaseMount(share = "leases", o: { ask?: boolean; autoAck?: boolean; resume?: string } = {}): Promise<LeaseConn> {
  const headers: Record<string, string> = o.ask === false ? {} : { [LEASES_HEADER]: "1" };
  if (o.resume) headers[RESUME_HEADER] = o.resume;
  const res = await upgrade(share, headers);
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  ws.binaryType = "arraybuffer";
  const client = new Client({ send: (m) => ws.send(m), close: () => ws.close(1000, "client closed") });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason })),
  );
  const c: LeaseConn = {
    client,
    ws,
    term: res.headers.get(LEASES_HEADER),
    token: `${res.headers.get(SESSION_HEADER)}.${res.headers.get(SECRET_HEADER)}`,
    events: [],
    closed,
    autoAck: o.autoAck !== false,
    ack: (n) => ws.send(leaseText({ lease: "ack", n })),
    leases: (kind) => c.events.flatMap((e) => (e.kind === "lease" && e.m.lease === kind ? [e.m as never] : [])),
  };
  ws.addEventListener("message", (ev: MessageEvent) => {
    const at = Date.now();
    if (typeof ev.data === "string") {
      if (ev.data === LEASE_RENEWED) return;
      const m = parseLease(ev.data);
      c.events.push({ kind: "lease", m, at });
      if (m.lease === "recall" && c.autoAck) c.ack(m.n);
      return;
    }
    const bytes = new Uint8Array(ev.data as ArrayBuffer);
    c.events.push({ kind: "reply", tag: bytes[5]! | (bytes[6]! << 8), type: bytes[4]!, at });
    client.receive(bytes);
  });
  ws.addEventListener("close", (ev) => client.fail(new Error(`WebSocket closed (${ev.code} ${ev.reason})`)));
  ws.accept();
  if (o.resume && o.resume !== "new") {
    ws.send(HELLO);
    return c;
  }
  await client.version(1 << 20);
  await client.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "nobody", aname: "", n_uname: NONUNAME });
  return c;
}

/** Waits until `f` holds (polled), failing after `ms`. */
export async function until(f: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The inodes (qid.path, decimal) every grant so far named. */
export function granted(c: LeaseConn): Set<string> {
  return new Set(c.leases("grant").flatMap((g) => g.q));
}
