// The gateway's routes (hono). Everything about a share's sessions happens in
// the share's Durable Object; the worker checks the request and hands it on.

import { type Context, Hono, type Next } from "hono";
import { authorize, authorizeOperator } from "./auth.ts";
import { ACK_SUBPROTOCOL, LEASES_HEADER, PLATFORM_MSIZE_CEILING, PLATFORM_MSIZE_CEILING_SOURCE, RESUME_HEADER, SUBPROTOCOL } from "../protocol/index.ts";
import { CONFIG_VAR, type Config, OPERATOR_TOKENS_SECRET, type ShareConfig, objectName } from "./config.ts";
import { configOf } from "./env.ts";
import { logFor } from "./log.ts";
import { FILE_RESPONSE_HEADERS } from "./files.ts";
import { PATH_MAX } from "../storage/keys.ts";
import { needsOriginCheck, refusedHost, refusedOrigin } from "./origins.ts";
import { LINK_ACCESS, LINK_DEFAULT_S, LINK_EXPIRES, LINK_MAX_S, LINK_SIGNATURE, encodePath } from "./links.ts";
import { FILE_HEADER, HEADER_PREFIX, LINK_HEADER, NINEP_LINK_HEADER, SHARE_HEADER } from "./object-headers.ts";
import { z } from "zod";

type Vars = { config: Config; share: ShareConfig; shareName: string; signedLink: string | null };
type Env9p = { Bindings: Env; Variables: Vars };

function problem(status: number, error: string): Response {
  return Response.json({ error }, { status });
}

/**
 * A client's request headers as the share's object may see them: every
 * X-Edge9p-* header is the worker's word to the object (SHARE_HEADER,
 * FILE_HEADER, LINK_HEADER) and is dropped, except the one the protocol
 * defines for clients: the bridge's X-Edge9p-Resume (RESUME_HEADER,
 * protocol/resume.ts), which the object needs for the resume handshake, and
 * X-Edge9p-Leases (LEASES_HEADER, protocol/leases.ts), a client's ask for leases.
 */
function clientHeaders(from: Headers): Headers {
  const out = new Headers();
  const resume = RESUME_HEADER.toLowerCase();
  const leases = LEASES_HEADER.toLowerCase();
  const ours = HEADER_PREFIX.toLowerCase();
  // Headers iterate with lower-case names.
  for (const [k, v] of from) {
    if (k.startsWith(ours) && k !== resume && k !== leases) continue;
    out.append(k, v);
  }
  return out;
}

export function createApp() {
  const app = new Hono<Env9p>();

  // Every answer of the files route, refusals included, carries nosniff and
  // the sandbox CSP (worker/files.ts says why).
  app.use("/v1/shares/:share/files/*", async (c, next) => {
    await next();
    const res = new Response(c.res.body, c.res);
    for (const [k, v] of Object.entries(FILE_RESPONSE_HEADERS)) res.headers.set(k, v);
    c.res = res;
  });

  // A bad configuration answers every request with 500, naming the field.
  // Then the host (421) and, for what can change anything, the page's
  // origin (403): before any route, so before any upgrade (worker/origins.ts).
  app.use("*", async (c, next) => {
    const r = configOf(c.env);
    if (!r.ok) return c.req.path === "/healthz" ? c.json({ ok: false, error: r.error }, 500) : problem(500, r.error);
    const url = new URL(c.req.url);
    const host = refusedHost(r.config, url);
    if (host) return problem(421, host);
    if (needsOriginCheck(c.req.raw)) {
      const origin = refusedOrigin(r.config, url, c.req.header("Origin") ?? null);
      if (origin) return problem(403, origin);
    }
    c.set("config", r.config);
    await next();
  });

  app.get("/healthz", (c) => c.json({ ok: true }));

  // POST bodies are JSON, and only JSON: a cross-site form or text/plain
  // POST needs no CORS preflight (Fetch standard, CORS-safelisted request
  // headers), an application/json one does, and this gateway answers none.
  const json = async (c: Context<Env9p>, next: Next) => {
    const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") return problem(415, `POST ${new URL(c.req.url).pathname} takes Content-Type: application/json`);
    await next();
  };

  // Which share: 404 for one this gateway does not have.
  const findShare = async (c: Context<Env9p>, next: Next) => {
    const name = c.req.param("share")!;
    const sh = c.var.config.shares[name];
    if (!sh) return problem(404, `no share named ${JSON.stringify(name)}`);
    c.set("share", sh);
    c.set("shareName", name);
    c.set("signedLink", null);
    await next();
  };

  // May this request open the share: 401 without a token, 403 with a token
  // that is not one of the share's, all before any WebSocket upgrade.
  const shareToken = async (c: Context<Env9p>, next: Next) => {
    const name = c.var.shareName;
    const auth = await authorize(c.var.share, c.req.raw);
    if (auth === "missing" || auth === "malformed") {
      const r = problem(401, auth === "missing" ? `share ${name} needs a token` : "the token is not hex or base64url of 16 to 256 characters");
      r.headers.set("WWW-Authenticate", `Bearer realm="edge9p", share="${name}"`);
      return r;
    }
    if (auth === "wrong") return problem(403, `the token does not open share ${name}`);
    await next();
  };

  // A file's signed link (worker/links.ts) stands in for the token; the
  // share's object checks it, since only it holds the key.
  const fileAccess = async (c: Context<Env9p>, next: Next) => {
    const url = new URL(c.req.url);
    const signature = url.searchParams.get(LINK_SIGNATURE);
    if (signature !== null && !c.req.header("Authorization")) {
      c.set("signedLink", `${url.searchParams.get(LINK_EXPIRES) ?? ""} ${signature}`);
      return next();
    }
    return shareToken(c, next);
  };

  // A signed 9P URL (worker/links.ts) stands in for the token, for clients
  // that can send neither a header nor a subprotocol (browser VMs). Its
  // signature is checked whenever present, token or not, so its read-only
  // scope holds; the share's object checks it, since only it holds the key.
  // A URL without its signature is no credential: the token is asked for.
  const ninePAccess = async (c: Context<Env9p>, next: Next) => {
    const url = new URL(c.req.url);
    const signature = url.searchParams.get(LINK_SIGNATURE);
    if (signature !== null) {
      const p = (k: string) => (url.searchParams.get(k) ?? "").replaceAll(" ", "");
      c.set("signedLink", `${p(LINK_EXPIRES)} ${p(LINK_ACCESS)} ${signature.replaceAll(" ", "")}`);
      return next();
    }
    return shareToken(c, next);
  };

  // The operator's routes (drain, check, stats, link rotation) take the
  // gateway's operator token, not a share's: whoever may read a share must
  // not be able to cut its sessions off or revoke its links. A gateway
  // without one refuses them (no loopback exception: locally the client's
  // address is not known, CF-Connecting-IP is whatever the client sent).
  const operator = async (c: Context<Env9p>, next: Next) => {
    const auth = await authorizeOperator(c.var.config, c.req.raw);
    if (auth === "none configured") {
      return problem(403, `this gateway has no operator token: add a SHA-256 (npx edge9p token) to ${CONFIG_VAR}.operator_token_hashes or the ${OPERATOR_TOKENS_SECRET} secret`);
    }
    if (auth === "missing") {
      const r = problem(401, `${c.req.method} ${new URL(c.req.url).pathname} needs the gateway's operator token (Authorization: Bearer)`);
      r.headers.set("WWW-Authenticate", `Bearer realm="edge9p operator"`);
      return r;
    }
    if (auth === "wrong") return problem(403, "that is not this gateway's operator token");
    await next();
  };

  // The shares this gateway serves (names only: a share's token guards its files).
  app.get("/v1/shares", (c) => {
    if (!c.var.config.list_shares) {
      return problem(403, "this gateway does not list its shares (EDGE9P.list_shares): open /shares/NAME/ by its name");
    }
    const shares = Object.entries(c.var.config.shares)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, sh]) => ({ name, read_only: sh.read_only, token: sh.token_hashes.length > 0 }));
    return c.json({ shares });
  });

  // The share browser (web/, built into dist/web and served as static
  // assets): the list at "/" is an asset; a share's page is the same page.
  app.get("/shares/:share", (c) => c.redirect(`/shares/${encodeURIComponent(c.req.param("share"))}/`, 308));
  app.get("/shares/:share/", async (c) => {
    if (!c.env.ASSETS) return problem(503, "the share browser is not built here (npm run build:web)");
    return c.env.ASSETS.fetch(new Request(new URL("/index.html", c.req.url)));
  });

  app.get("/v1/shares/:share", findShare, shareToken, (c) => {
    const name = c.var.shareName;
    const cap = c.var.config.msize_cap;
    return c.json({
      name,
      read_only: c.var.share.read_only,
      msize_max: Math.min(cap, PLATFORM_MSIZE_CEILING),
      msize_max_set_by: cap < PLATFORM_MSIZE_CEILING ? "operator cap (EDGE9P.msize_cap)" : PLATFORM_MSIZE_CEILING_SOURCE,
      url: `/v1/shares/${name}/9p`,
    });
  });

  // The namespace's consistency check (an operator's fsck after an incident):
  // 200 when consistent, 409 with the counts of what is not.
  app.get("/v1/shares/:share/check", findShare, operator, async (c) => {
    const report = await c.env.SHARE.getByName(objectName(c.var.share)).check(c.var.shareName);
    if (!report) return problem(500, `share ${c.var.shareName} could not start`);
    return c.json({ share: c.var.shareName, ...report }, report.ok ? 200 : 409);
  });

  // Figures for operators and the benchmark: sessions, reply bytes in flight
  // and their high-water mark, journal bytes, publisher counters.
  app.get("/v1/shares/:share/stats", findShare, operator, async (c) => {
    const stats = await c.env.SHARE.getByName(objectName(c.var.share)).statsOf(c.var.shareName);
    if (!stats) return problem(500, `share ${c.var.shareName} could not start`);
    return c.json(stats);
  });

  // Closes every socket of the share: resumable sessions (edge9p bridge) carry
  // on on new sockets, others end. For an operator before maintenance, and
  // to see that clients resume.
  app.post("/v1/shares/:share/drain", json, findShare, operator, async (c) => {
    const closed = await c.env.SHARE.getByName(objectName(c.var.share)).drainShare(c.var.shareName);
    if (closed === null) return problem(500, `share ${c.var.shareName} could not start`);
    return c.json({ share: c.var.shareName, closed });
  });

  // Revokes every signed link of the share: the share's object replaces the
  // key they were signed with (worker/links.ts).
  app.post("/v1/shares/:share/links/rotate", json, findShare, operator, async (c) => {
    const at = await c.env.SHARE.getByName(objectName(c.var.share)).rotateLinks(c.var.shareName);
    if (at === null) return problem(500, `share ${c.var.shareName} could not start`);
    return c.json({ share: c.var.shareName, rotated: new Date(at * 1000).toISOString() });
  });

  // A file over plain HTTP (curl, links), Range included, from the share's
  // object: what 9P sees, published or not (worker/files.ts).
  app.on(["GET", "HEAD"], "/v1/shares/:share/files/*", findShare, fileAccess, async (c) => {
    const prefix = `/v1/shares/${encodeURIComponent(c.var.shareName)}/files/`;
    const url = new URL(c.req.url);
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : "";
    const headers = new Headers();
    headers.set(SHARE_HEADER, c.var.shareName);
    headers.set(FILE_HEADER, path);
    if (c.var.signedLink !== null) headers.set(LINK_HEADER, c.var.signedLink);
    for (const h of ["Range", "If-None-Match"]) {
      const v = c.req.header(h);
      if (v) headers.set(h, v);
    }
    const stub = c.env.SHARE.getByName(objectName(c.var.share));
    return stub.fetch(new Request(url, { method: c.req.method, headers }));
  });

  // A link to one file that works without the token until it expires, for
  // browsers and anything else that cannot send a header; or ("kind": "9p")
  // a URL of the share's 9P route, for clients that cannot send one either.
  const expiresIn = z.number().int().min(1).max(LINK_MAX_S).default(LINK_DEFAULT_S);
  const FileLinkRequest = z.strictObject({
    kind: z.literal("file").optional(),
    path: z
      .string()
      .min(1, "names a file of the share")
      .refine((p) => !p.split("/").some((n) => n === "." || n === ".." || n.includes("\0")), "has no '.', '..' or NUL names")
      .refine((p) => new TextEncoder().encode(p).byteLength < PATH_MAX, `has fewer than ${PATH_MAX} bytes (PATH_MAX)`),
    expires_in: expiresIn,
  });
  const NinePLinkRequest = z.strictObject({
    kind: z.literal("9p"),
    read_only: z.boolean().default(false),
    expires_in: expiresIn,
  });
  const LINK_FORMS = `{"path": "a/file", "expires_in": seconds up to ${LINK_MAX_S}} or {"kind": "9p", "read_only": false, "expires_in": seconds}`;
  app.post("/v1/shares/:share/links", json, findShare, shareToken, async (c) => {
    const body: unknown = await c.req.json().catch(() => undefined);
    const nineP = typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === "9p";
    const parsed = nineP ? NinePLinkRequest.safeParse(body) : FileLinkRequest.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return problem(400, `links wants JSON ${LINK_FORMS}: ${i.path.join(".") || "body"} ${i.message}`);
    }
    const stub = c.env.SHARE.getByName(objectName(c.var.share));
    if (parsed.data.kind === "9p") {
      const expires = Math.floor(Date.now() / 1000) + parsed.data.expires_in;
      // A read-only share's URL says so: the URL tells what it opens.
      const access = parsed.data.read_only || c.var.share.read_only ? "ro" : "rw";
      const signature = await stub.sign9pUrl(c.var.shareName, access, expires);
      const url = new URL(`/v1/shares/${encodeURIComponent(c.var.shareName)}/9p`, c.var.config.base_url || c.req.url);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      url.searchParams.set(LINK_EXPIRES, String(expires));
      url.searchParams.set(LINK_ACCESS, access);
      url.searchParams.set(LINK_SIGNATURE, signature);
      return c.json({ url: url.toString(), expires: new Date(expires * 1000).toISOString(), read_only: access === "ro" });
    }
    const encoded = encodePath(parsed.data.path);
    const expires = Math.floor(Date.now() / 1000) + parsed.data.expires_in;
    const signature = await stub.signFileLink(c.var.shareName, encoded, expires);
    // On base_url where one is set; else on the request's host, which the
    // host check has vouched for.
    const url = new URL(`/v1/shares/${encodeURIComponent(c.var.shareName)}/files/${encoded}`, c.var.config.base_url || c.req.url);
    url.searchParams.set(LINK_EXPIRES, String(expires));
    url.searchParams.set(LINK_SIGNATURE, signature);
    return c.json({ url: url.toString(), expires: new Date(expires * 1000).toISOString() });
  });

  // The 9P session. An upgrade that offers no subprotocol is plain 9P: a
  // browser VM's `new WebSocket(url)` (v86) can offer none. One that offers
  // protocols must offer ours; RFC 6455 section 4.1 has the client fail a
  // 101 that names a protocol it did not offer, so the object names one only
  // when some were offered.
  app.get("/v1/shares/:share/9p", findShare, ninePAccess, async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return problem(426, "this is a 9P-over-WebSocket endpoint: connect with a WebSocket (subprotocol 9p)");
    }
    const offered = (c.req.header("Sec-WebSocket-Protocol") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (offered.length > 0 && !offered.includes(SUBPROTOCOL) && !offered.includes(ACK_SUBPROTOCOL)) {
      return problem(400, `WebSocket subprotocol must include "${SUBPROTOCOL}" or "${ACK_SUBPROTOCOL}" (offered: ${offered.join(", ")})`);
    }
    const stub = c.env.SHARE.getByName(objectName(c.var.share));
    const headers = clientHeaders(c.req.raw.headers);
    headers.set(SHARE_HEADER, c.var.shareName);
    if (c.var.signedLink !== null) headers.set(NINEP_LINK_HEADER, c.var.signedLink);
    return stub.fetch(new Request(c.req.raw, { headers }));
  });

  app.notFound((c) => problem(404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  // At EDGE9P.log's level, read from the env as the routes read it ("off"
  // prints nothing).
  app.onError((e, c) => {
    logFor(configOf(c.env)).error(`worker: ${e.stack ?? e.message}`);
    return problem(500, "internal error");
  });
  return app;
}
