// A 9P socket's opening at the share's object: the WebSocket upgrade (who
// may open one, which subprotocol, the msize the share allows) and the
// resume handshake that moves a resumable session onto a new socket.

import {
  ACK_SUBPROTOCOL,
  LEASES_HEADER,
  MSIZE_MAX_HEADER,
  MSIZE_REASON_HEADER,
  PLATFORM_MSIZE_CEILING,
  PLATFORM_MSIZE_CEILING_SOURCE,
  RESUME_HEADER,
  RESUME_WINDOW_HEADER,
  SECRET_HEADER,
  SESSION_HEADER,
  SUBPROTOCOL,
} from "../protocol/index.ts";
import { randomHex, sameText, sha256Hex } from "./auth.ts";
import { CLOSE } from "./close-codes.ts";
import { type Access, check9pLink, linkKeysOf } from "./links.ts";
import type { Log } from "./log.ts";
import type { SessionStore } from "./session-store.ts";
import type { Sessions } from "./sessions.ts";
import type { Ready } from "./share-setup.ts";
import type { Scope, Sockets } from "./sockets.ts";

export interface UpgradeDeps {
  sql: SqlStorage;
  store: SessionStore;
  sockets: Sockets;
  sessions: Sessions;
  log: Log;
}

/**
 * Opens a 9P socket on share `r`; `ninepLink` is the signed 9P URL's
 * "EXPIRES ACCESS SIGNATURE" when one stands in for a token. Answers 101
 * with the socket, or why not.
 */
export async function upgrade(d: UpgradeDeps, request: Request, r: Ready, ninepLink: string | null): Promise<Response> {
  const name = r.name;
  // A signed 9P URL instead of a token: refused (403, why) before anything
  // else, and its access kept with the socket.
  let access: Access | null = null;
  if (ninepLink !== null) {
    const v = await check9pLink(ninepLink, (now) => linkKeysOf(d.sql, now), name);
    if ("refused" in v) return v.refused;
    access = v.access;
  }
  // Sockets still open or closing (a closed socket's unread replies stay
  // in workerd until its peer goes) and resumable sessions waiting for
  // their clients all count.
  const resume = request.headers.get(RESUME_HEADER);
  const sockets = d.sockets.all().length;
  const live = d.sockets.liveSids();
  const waiting = d.store.detachedSids().filter((sid) => !live.has(sid));
  // A resume takes the place its session held while it waited.
  const resuming = resume && resume !== "new" ? resume.split(".")[0]! : null;
  const held = sockets + waiting.length - (resuming !== null && waiting.includes(resuming) ? 1 : 0);
  const stranded = d.sockets.stranded;
  if (stranded >= r.config.inflight_bytes) {
    return Response.json(
      {
        error: `share ${name}: ${stranded} bytes of replies wait on sockets closed for not reading, whose clients keep them open (EDGE9P.inflight_bytes); try again later`,
      },
      { status: 503, headers: { "Retry-After": "30" } },
    );
  }
  if (held >= r.config.max_sessions) {
    return Response.json(
      {
        error: `share ${name} holds ${held} sessions (${sockets} sockets, ${waiting.length} waiting to be resumed), its limit (EDGE9P.max_sessions); try again later`,
      },
      { status: 503, headers: { "Retry-After": "5" } },
    );
  }
  const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  const acks = offered.includes(ACK_SUBPROTOCOL);
  const plain = r.share.plain_9p;
  if (!acks && plain !== true && !(plain === "signed" && access !== null)) {
    const error =
      plain === "signed"
        ? `share ${name} takes plain 9P clients only through a signed 9P URL (POST /v1/shares/${name}/links {"kind": "9p"}); others must offer WebSocket subprotocol "${ACK_SUBPROTOCOL}"`
        : `share ${name} takes only clients that acknowledge what they read (WebSocket subprotocol "${ACK_SUBPROTOCOL}", as edge9p bridge, the CLI and the share browser offer); plain 9P clients need EDGE9P.shares.${name}.plain_9p = true or "signed"`;
    return Response.json({ error }, { status: 400 });
  }
  const scope: Scope = access === null ? {} : { signed: true, ...(access === "ro" ? { readOnly: true } : {}) };
  // docs/leases.md: granted only to a client that asks, by a share that grants them.
  const leases = r.config.leases && request.headers.get(LEASES_HEADER) === "1";
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  // Tagged at the accept (tags cannot be added later) with the session it
  // opens, or the one a resume claims: worker/sockets.ts.
  const sid = resuming ?? crypto.randomUUID();
  d.sockets.accept(server, sid, scope.signed === true);
  const headers: Record<string, string> = {
    [MSIZE_MAX_HEADER]: String(r.config.msize_cap),
    [MSIZE_REASON_HEADER]: r.config.msize_cap < PLATFORM_MSIZE_CEILING ? "operator cap EDGE9P.msize_cap" : PLATFORM_MSIZE_CEILING_SOURCE,
  };
  // Only a protocol the client offered (RFC 6455 section 4.1: it fails
  // the connection otherwise, and Chromium does): none for none.
  if (offered.length > 0) headers["Sec-WebSocket-Protocol"] = acks ? ACK_SUBPROTOCOL : SUBPROTOCOL;
  if (leases) headers[LEASES_HEADER] = String(r.config.lease_term_ms);
  if (resume && resume !== "new") {
    const refused = await resumeOn(d, server, r, resume, acks, leases, scope);
    if (refused) {
      // Accepted to say why with a close code (an HTTP error reaches no WebSocket client's code).
      d.log.info(`refused a resume: ${refused}`);
      server.close(CLOSE.RESUME_REFUSED, refused.slice(0, 120));
    } else {
      headers[SESSION_HEADER] = sid;
      headers[RESUME_WINDOW_HEADER] = String(r.config.resume_window_ms);
    }
    if (refused) delete headers[LEASES_HEADER];
    return new Response(null, { status: 101, webSocket: client, headers });
  }
  let secretHash: string | null = null;
  if (resume === "new") {
    const secret = randomHex(24);
    secretHash = await sha256Hex(secret);
    headers[SECRET_HEADER] = secret;
    headers[RESUME_WINDOW_HEADER] = String(r.config.resume_window_ms);
  }
  d.sessions.start(server, { sid, socketGen: 0, acks, ...scope, ...(leases ? { leases } : {}) }, r, secretHash);
  headers[SESSION_HEADER] = sid;
  return new Response(null, { status: 101, webSocket: client, headers });
}

/**
 * The resume handshake: checks the "<session>.<secret>" token and moves the
 * session onto socket `ws`; returns why not, if not.
 */
async function resumeOn(d: UpgradeDeps, ws: WebSocket, r: Ready, token: string, acks: boolean, leases: boolean, scope: Scope): Promise<string | null> {
  const [sid, secret] = token.split(".");
  if (!sid || !secret) return `${RESUME_HEADER} must be "new" or "<session>.<secret>"`;
  const rec = d.store.resumeOf(sid);
  if (!rec) return `session ${sid} cannot be resumed: it ended (or never existed)`;
  if (!sameText(await sha256Hex(secret), rec.secretHash)) return `session ${sid}: wrong resume secret`;
  // Re-read after the await: another resume may have won meanwhile.
  const now = d.store.resumeOf(sid);
  if (!now || now.socketGen !== rec.socketGen) return `session ${sid} was resumed on another connection meanwhile`;
  const socketGen = d.store.reattach(sid);
  return d.sessions.resumeOn(ws, { sid, socketGen, acks, ...scope, ...(leases ? { leases } : {}) }, r);
}
