// What one client can make a share hold, at small limits: unread replies
// (a 256 KiB window, 1.5 s of stall), small replies past the window, sessions
// waiting to be resumed (2, and they count toward max_sessions = 3), xattr
// buffers (64 KiB a session) and fids across the share (64).

import { describe, expect, it } from "vitest";
import { ACK_SUBPROTOCOL, ERRNO, NOFID, NOTAG, RESUME_HEADER, SECRET_HEADER, SESSION_HEADER, encode } from "../../protocol/index.ts";
import { getattr } from "../workerd/support/fs.ts";
import { mount, noise, put, rawSession, shareObject, sleep, upgrade, walk } from "../workerd/support/gateway.ts";

const L = "9P2000.L";
type Raw = Awaited<ReturnType<typeof rawSession>>;

async function attach(r: Raw, msize = 65536) {
  r.send(encode({ type: "Tversion", tag: NOTAG, msize, version: L }, L));
  await r.next();
  r.send(encode({ type: "Tattach", tag: 0, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 }, L));
  await r.next();
}

describe("unread replies", () => {
  it("closes a socket whose reads wait 1.5 s with nothing read (4006), and the share goes on", { timeout: 30_000 }, async () => {
    await put("main", "big.bin", noise(1 << 20, 5));
    const r = await rawSession("main");
    await attach(r);
    r.send(encode({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["big.bin"] }, L));
    await r.next();
    r.send(encode({ type: "Tlopen", tag: 1, fid: 1, flags: 0 }, L));
    await r.next();
    // max_inflight is 4: four 64 KiB reads, never shown read, fill the 256 KiB window.
    for (let i = 0; i < 4; i++) r.send(encode({ type: "Tread", tag: 10 + i, fid: 1, offset: BigInt(i * 65536), count: 65536 }, L));
    const t = Date.now();
    const closed = await r.closed();
    console.log(`closed after ${Date.now() - t} ms: ${closed.code} ${closed.reason}`);
    expect(closed.code).toBe(4006);
    expect(closed.reason).toMatch(/unread/);
    expect((await shareObject().stats()).notReading).toBeGreaterThanOrEqual(1);
    const { client: c, ws } = await mount("main", 65536);
    expect((await getattr(c, "big.bin")).size).toBe(1n << 20n);
    ws.close(1000);
    await sleep(100);
  });

  it("closes a 9p.ack socket that leaves small replies unread past its window", { timeout: 60_000 }, async () => {
    const r = await rawSession("main", { "Sec-WebSocket-Protocol": `${ACK_SUBPROTOCOL}, 9p` });
    await attach(r);
    r.send(encode({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["big.bin"] }, L));
    await r.next();
    // Tgetattr replies are small, so they never wait: they count, and 256 KiB
    // + 1 MiB of them, never acknowledged, end the session.
    let sent = 0;
    let code = 0;
    r.closed().then((c) => (code = c.code));
    while (code === 0 && sent < 20_000) {
      r.send(encode({ type: "Tgetattr", tag: 2, fid: 1, request_mask: 0x3fffn }, L));
      sent++;
      const m = await r.next(2000).catch(() => null);
      if (sent === 1) expect(m).toHaveProperty("byteLength", 160);
    }
    await sleep(100);
    console.log(`closed after ${sent} unacknowledged Tgetattr replies`);
    expect(code).toBe(4006);
    expect(sent).toBeLessThan(20_000);
    expect(sent * 160).toBeGreaterThan(262144 + (1 << 20));
    r.ws.close(1000);
    await sleep(100);
  });
});

describe("sessions waiting to be resumed", () => {
  it("count toward max_sessions, and past max_detached_sessions the longest waiting ends", { timeout: 30_000 }, async () => {
    const opened: { sid: string; secret: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await upgrade("other", { [RESUME_HEADER]: "new" });
      expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
      const ws = res.webSocket!;
      ws.accept();
      opened.push({ sid: res.headers.get(SESSION_HEADER)!, secret: res.headers.get(SECRET_HEADER)! });
      // Dropped, not closed normally: a resumable client comes back from this.
      ws.close(4999, "network gone");
      await sleep(100);
    }
    // Three dropped, two may wait: the first one ended.
    const first = await upgrade("other", { [RESUME_HEADER]: `${opened[0]!.sid}.${opened[0]!.secret}` });
    const ws1 = first.webSocket!;
    const refused = new Promise<{ code: number; reason: string }>((r) => ws1.addEventListener("close", (ev) => r({ code: ev.code, reason: ev.reason })));
    ws1.accept();
    expect((await refused).code).toBe(4003);
    // The two waiting and one open socket fill max_sessions = 3.
    const a = await upgrade("other");
    expect(a.status).toBe(101);
    a.webSocket!.accept();
    const b = await upgrade("other");
    expect(b.status).toBe(503);
    expect(((await b.json()) as { error: string }).error).toMatch(/2 waiting to be resumed/);
    // The second still resumes.
    const again = await upgrade("other", { [RESUME_HEADER]: `${opened[1]!.sid}.${opened[1]!.secret}` });
    expect(again.status).toBe(101);
    expect(again.headers.get(SESSION_HEADER)).toBe(opened[1]!.sid);
    again.webSocket!.accept();
    again.webSocket!.close(1000);
    a.webSocket!.close(1000);
  });
});

describe("xattr buffers and fids", () => {
  it("caps a session's xattr buffers (ENOSPC to create one more, ENOMEM to read one more)", async () => {
    const { client: c, ws } = await mount("main", 65536);
    await put("main", "x.txt", "x");
    const w = await walk(c, "x.txt");
    const big = 60 * 1024;
    // One 60 KiB value being written holds 60 KiB of the session's 64 KiB.
    await c.request({ type: "Txattrcreate", fid: w.fid, name: "user.a", attr_size: BigInt(big), flags: 0 });
    const w2 = await walk(c, "x.txt");
    await expect(c.request({ type: "Txattrcreate", fid: w2.fid, name: "user.b", attr_size: BigInt(big), flags: 0 })).rejects.toMatchObject({
      errno: ERRNO.ENOSPC,
    });
    // Finishing the first frees its buffer.
    for (let off = 0; off < big; off += 32768) {
      await c.request({ type: "Twrite", fid: w.fid, offset: BigInt(off), data: noise(Math.min(32768, big - off), off + 1) });
    }
    await c.request({ type: "Tclunk", fid: w.fid });
    c.releaseFid(w.fid);
    await c.request({ type: "Txattrcreate", fid: w2.fid, name: "user.b", attr_size: BigInt(big), flags: 0 });
    // Reading user.a back needs 60 KiB more than the session may hold now.
    const w3 = await walk(c, "x.txt");
    const xf = c.allocFid();
    await expect(c.request({ type: "Txattrwalk", fid: w3.fid, newfid: xf, name: "user.a" })).rejects.toMatchObject({ errno: ERRNO.ENOMEM });
    ws.close(1000);
    await sleep(100);
  });

  it("answers ENFILE past the share's fids, whichever session holds them", async () => {
    // Three sessions of at most 32 fids each (max_fids) reach the share's 64 first.
    const conns = [await mount("main", 65536), await mount("main", 65536), await mount("main", 65536)];
    let err: unknown = null;
    let held = 3;
    const first: number[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        for (const c of conns) {
          const w = await walk(c.client, "");
          if (i === 0) first.push(w.fid);
          held++;
        }
      }
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ errno: ERRNO.ENFILE });
    expect(held).toBe(64);
    // A clunk in one session gives another room.
    await conns[0]!.client.request({ type: "Tclunk", fid: first[0]! });
    await walk(conns[2]!.client, "");
    for (const c of conns) c.ws.close(1000);
    await sleep(100);
  });
});
