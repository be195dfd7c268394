import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { runInDurableObject } from "cloudflare:test";
import { PLATFORM_MSIZE_CEILING_SOURCE } from "../../protocol/index.ts";
import { put, shareObject, upgrade } from "./support/gateway.ts";

const get = (path: string, init?: RequestInit) => exports.default.fetch(`http://gateway${path}`, init);
const OPERATOR = { Authorization: "Bearer test-operator-token-0123456789abcdef" };

describe("routes", () => {
  it("answers /healthz", async () => {
    const r = await get("/healthz");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
  });

  it("describes a share: read-only flag and the msize ceiling with what sets it", async () => {
    expect(await (await get("/v1/shares/main")).json()).toEqual({
      name: "main",
      read_only: false,
      msize_max: 33554432,
      msize_max_set_by: "Workers/Durable Objects reject WebSocket messages over 32 MiB (close 1009)",
      url: "/v1/shares/main/9p",
    });
    expect(await (await get("/v1/shares/ro")).json()).toMatchObject({ read_only: true });
  });

  it("lists the shares by name, unless list_shares is false; the share page needs the built assets", async () => {
    const r = await get("/v1/shares");
    const { shares } = (await r.json()) as { shares: { name: string; read_only: boolean; token: boolean }[] };
    expect(shares.map((s) => s.name)).toEqual([...shares.map((s) => s.name)].sort());
    expect(shares.find((s) => s.name === "main")).toEqual({ name: "main", read_only: false, token: false });
    expect(shares.find((s) => s.name === "ro")).toMatchObject({ read_only: true });
    expect(shares.find((s) => s.name === "secret")).toMatchObject({ token: true });
    const hidden = { ...env, EDGE9P: { ...(env as unknown as { EDGE9P: object }).EDGE9P, list_shares: false } };
    const refused = await createApp().fetch(new Request("http://gateway/v1/shares"), hidden);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toMatch(/does not list its shares/);
    // This worker's test configuration has no assets: the page says so rather than failing.
    const page = await get("/shares/main/");
    expect(page.status).toBe(503);
    const bare = await get("/shares/main", { redirect: "manual" });
    expect(bare.status).toBe(308);
    expect(bare.headers.get("Location")).toBe("/shares/main/");
  });

  it("refuses an unknown share with 404", async () => {
    for (const path of ["/v1/shares/nope", "/v1/shares/nope/9p"]) {
      const r = await get(path, { headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "9p" } });
      expect(r.status).toBe(404);
      expect(await r.json()).toEqual({ error: 'no share named "nope"' });
    }
  });

  it("refuses a plain GET on the 9P route with 426", async () => {
    const r = await get("/v1/shares/main/9p");
    expect(r.status).toBe(426);
    expect((await r.json()) as object).toMatchObject({ error: expect.stringMatching(/connect with a WebSocket/) });
  });

  it("refuses a WebSocket that offers protocols but not 9p with 400; one that offers none is plain 9P, and its 101 names none", async () => {
    const r = await upgrade("main", { "Sec-WebSocket-Protocol": "chat, mqtt" });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'WebSocket subprotocol must include "9p" or "9p.ack" (offered: chat, mqtt)' });
    const none = await exports.default.fetch("http://gateway/v1/shares/main/9p", { headers: { Upgrade: "websocket" } });
    expect(none.status).toBe(101);
    expect(none.headers.get("Sec-WebSocket-Protocol")).toBeNull();
    none.webSocket!.accept();
    none.webSocket!.close(1000);
  });

  it("accepts the upgrade with subprotocol 9p and says the msize ceiling", async () => {
    const r = await upgrade("main");
    expect(r.status).toBe(101);
    expect(r.headers.get("Sec-WebSocket-Protocol")).toBe("9p");
    expect(r.headers.get("X-Edge9p-Msize-Max")).toBe("33554432");
    // The cap is the ceiling: the ceiling is what limits, not the operator.
    expect(r.headers.get("X-Edge9p-Msize-Reason")).toBe(PLATFORM_MSIZE_CEILING_SOURCE);
    r.webSocket!.accept();
    r.webSocket!.close(1000);
  });

  it("checks a share's namespace: 200 when consistent, 409 naming what is not", async () => {
    const check = async () => {
      const res = await exports.default.fetch("http://gateway/v1/shares/main/check", { headers: OPERATOR });
      return { status: res.status, body: (await res.json()) as { ok: boolean; problems: Record<string, number> } };
    };
    const good = await check();
    expect(good.status).toBe(200);
    expect(good.body.ok).toBe(true);
    expect(Object.values(good.body.problems).every((n) => n === 0)).toBe(true);
    // An extent of an inode that does not exist, as a lost write would leave.
    const sql = (q: string) => runInDurableObject(shareObject(), (_o: unknown, state) => void state.storage.sql.exec(q));
    await sql(`INSERT INTO extent (ino, off, data, len) VALUES (999999, 0, x'00', 1)`);
    try {
      const bad = await check();
      expect(bad.status).toBe(409);
      expect(bad.body).toMatchObject({ ok: false, problems: { orphanExtents: 1 } });
    } finally {
      await sql(`DELETE FROM extent WHERE ino = 999999`);
    }
    expect((await check()).status).toBe(200);
  });

  it("gives a share's figures at /stats", async () => {
    const res = await exports.default.fetch("http://gateway/v1/shares/main/stats", { headers: OPERATOR });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ share: "main", inflightBytes: 0, publish: { failures: expect.any(Number) } });
    expect((await exports.default.fetch("http://gateway/v1/shares/secret/stats")).status).toBe(401);
    // Operators need no share token: the operator token opens every share's figures.
    expect((await exports.default.fetch("http://gateway/v1/shares/secret/stats", { headers: OPERATOR })).status).toBe(200);
  });

  it("strips X-Edge9p-* headers a client sends, except the resume handshake's", async () => {
    await put("main", "routes/inner.txt", "inner\n");
    // The worker's own headers to the object: a client's copy must not reach it.
    for (const [h, v] of [
      ["X-Edge9p-File", "routes/inner.txt"],
      ["X-Edge9p-Link", "1 2"],
      ["X-Edge9p-Anything", "x"],
    ] as [string, string][]) {
      const r = await upgrade("main", { [h]: v });
      expect(r.status, h).toBe(101);
      r.webSocket!.accept();
      r.webSocket!.close(1000);
    }
    // The bridge's X-Edge9p-Resume (protocol/resume.ts) still opens a resumable session.
    const resumable = await upgrade("main", { "X-Edge9p-Resume": "new" });
    expect(resumable.status).toBe(101);
    expect(resumable.headers.get("X-Edge9p-Secret")).toMatch(/^[0-9a-f]{48}$/);
    resumable.webSocket!.accept();
    resumable.webSocket!.close(1000);
  });

  it("answers unknown routes with 404 JSON", async () => {
    const r = await get("/nope");
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: "no route for GET /nope" });
  });
});

describe("a bad configuration", () => {
  const app = createApp();
  const share = { binding: "BUCKET", bucket: "bucket-one", prefix: "x" };
  const cases: [string, unknown, RegExp][] = [
    ["a typo in a field name", { shares: { dev: { ...share, read_onyl: true } } }, /EDGE9P\.shares\.dev: Unrecognized key: "read_onyl"/],
    ["a prefix with a leading slash", { shares: { dev: { ...share, prefix: "/abs" } } }, /EDGE9P\.shares\.dev\.prefix: no leading '\/'/],
    ["msize_cap below 4096", { msize_cap: 100, shares: { dev: share } }, /EDGE9P\.msize_cap: .*4096/],
    [
      "a largest file the publisher cannot upload in 10,000 parts within inflight_bytes",
      { inflight_bytes: 8 << 20, multipart_threshold: 5 << 20, shares: { dev: share } },
      /EDGE9P\.max_file_bytes: must be at most 10000 x inflight_bytes \(83886080000\): a file is published in at most 10000 parts, each held in memory within inflight_bytes/,
    ],
    ["a largest file past R2's largest object", { max_file_bytes: 2 ** 43, shares: { dev: share } }, /EDGE9P\.max_file_bytes: /],
    [
      "overlapping prefixes in one bucket",
      { shares: { a: { ...share, prefix: "team" }, b: { ...share, prefix: "team/x" } } },
      /EDGE9P\.shares\.b\.prefix: overlaps share a in bucket bucket-one/,
    ],
    ["a missing R2 binding", { shares: { dev: { ...share, binding: "NOPE" } } }, /EDGE9P\.shares\.dev\.binding: no R2 binding named NOPE/],
    ["no shares", { shares: {} }, /EDGE9P\.shares: configure at least one share/],
    ["a bad share name", { shares: { "Bad Name": share } }, /EDGE9P\.shares\.Bad Name: share names are/],
  ];
  for (const [what, config, message] of cases) {
    it(`answers every request with 500 naming the field: ${what}`, async () => {
      const badEnv = { ...env, EDGE9P: config };
      for (const path of ["/v1/shares/dev", "/v1/shares/dev/9p", "/healthz"]) {
        const r = await app.fetch(new Request(`http://gateway${path}`), badEnv);
        expect(r.status).toBe(500);
        const body = (await r.json()) as { error: string };
        expect(body.error).toMatch(message);
      }
    });
  }

  it("never echoes the configuration's or a secret's text in the error", async () => {
    const base = (env as unknown as { EDGE9P: object }).EDGE9P;
    const SECRET = "hunter2-secret-value-0123456789";
    const cases: [string, object, RegExp][] = [
      ["EDGE9P that is not JSON", { EDGE9P: `{"shares": ${SECRET}}` }, /^EDGE9P: not valid JSON$/],
      ["EDGE9P_TOKENS that is not JSON", { EDGE9P_TOKENS: `{"main": ["${SECRET}"` }, /^configuration error: EDGE9P_TOKENS: not valid JSON \(it is JSON \{"SHARE": \["sha256 hex", \.\.\.\]\}\)$/],
      ["a token in place of a share name", { EDGE9P_TOKENS: JSON.stringify({ [SECRET]: [] }) }, /EDGE9P_TOKENS: key 1 is not a share of EDGE9P\.shares/],
      ["a token in place of a hash", { EDGE9P_TOKENS: JSON.stringify({ main: [SECRET] }) }, /EDGE9P_TOKENS\.main\.0: a SHA-256 digest in lower-case hex/],
      ["EDGE9P_OPERATOR_TOKENS that is not JSON", { EDGE9P_OPERATOR_TOKENS: `["${SECRET}` }, /^configuration error: EDGE9P_OPERATOR_TOKENS: not valid JSON \(it is JSON \["sha256 hex", \.\.\.\]\)$/],
      ["a token in place of an operator hash", { EDGE9P_OPERATOR_TOKENS: JSON.stringify([SECRET]) }, /EDGE9P_OPERATOR_TOKENS\.0: a SHA-256 digest in lower-case hex/],
    ];
    for (const [what, over, message] of cases) {
      const r = await app.fetch(new Request("http://gateway/v1/shares/main"), { ...env, EDGE9P: base, ...over });
      expect(r.status, what).toBe(500);
      const { error } = (await r.json()) as { error: string };
      expect(error, what).toMatch(message);
      expect(error, what).not.toContain("hunter2");
    }
  });

  it("names a missing EDGE9P", async () => {
    const { EDGE9P: _, ...rest } = env as unknown as Record<string, unknown>;
    const r = await app.fetch(new Request("http://gateway/v1/shares/dev"), rest);
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ error: "EDGE9P is not set: add [vars.EDGE9P] to wrangler.toml" });
  });
});
