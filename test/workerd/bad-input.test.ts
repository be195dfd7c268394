// Bad input gets a clear error or close code and loses nothing: the session
// (or at least every other session) goes on.

import { beforeAll, describe, expect, it } from "vitest";
import { ERRNO, type MessageInit, decode, encode } from "../../protocol/index.ts";
import { diff, mount, noise, put, rawSession, readFile } from "./support/gateway.ts";

const L = "9P2000.L";
const DATA = noise(2 << 20, 11);

beforeAll(async () => {
  await put("main", "bad/file.txt", "content");
  await put("main", "bad/data.bin", DATA);
});

async function session(msize = 8192) {
  const r = await rawSession();
  r.send(encode({ type: "Tversion", tag: 0xffff, msize, version: L }, L));
  await r.next();
  r.send(encode({ type: "Tattach", tag: 1, fid: 0, afid: 0xffffffff, uname: "", aname: "", n_uname: 0 }, L));
  await r.next();
  const ask = async (m: Parameters<typeof encode>[0]) => {
    r.send(encode(m, L));
    return decode(await r.next(), L);
  };
  return { r, ask };
}

function withSize(b: Uint8Array, size: number): Uint8Array {
  new DataView(b.buffer, b.byteOffset).setUint32(0, size, true);
  return b;
}

describe("bad input", () => {
  it("answers a malformed message on its tag with EINVAL, and the session goes on", async () => {
    const { r, ask } = await session();
    // Twalk claiming 3 names but carrying 1.
    const good = encode({ type: "Twalk", tag: 5, fid: 0, newfid: 1, wnames: ["bad"] }, L);
    good[15] = 3;
    r.send(good);
    expect(decode(await r.next(), L)).toEqual({ type: "Rlerror", tag: 5, ecode: ERRNO.EINVAL });
    // Trailing bytes.
    const extra = new Uint8Array(12);
    extra.set(encode({ type: "Tclunk", tag: 6, fid: 0 }, L));
    r.send(withSize(extra, 12));
    expect(decode(await r.next(), L)).toEqual({ type: "Rlerror", tag: 6, ecode: ERRNO.EINVAL });
    expect(await ask({ type: "Twalk", tag: 7, fid: 0, newfid: 1, wnames: ["bad"] })).toMatchObject({ type: "Rwalk" });
  });

  it("answers an unknown message type with ENOSYS, and a reply sent as a request with EINVAL", async () => {
    const { r, ask } = await session();
    const odd = encode({ type: "Tclunk", tag: 9, fid: 0 }, L);
    odd[4] = 200;
    r.send(odd);
    expect(decode(await r.next(), L)).toEqual({ type: "Rlerror", tag: 9, ecode: ERRNO.ENOSYS });
    expect(await ask({ type: "Rclunk", tag: 10 })).toEqual({ type: "Rlerror", tag: 10, ecode: ERRNO.EINVAL });
  });

  it("answers unknown fids with EBADF", async () => {
    const { ask } = await session();
    const requests: MessageInit[] = [
      { type: "Tclunk", tag: 1, fid: 77 },
      { type: "Tgetattr", tag: 1, fid: 77, request_mask: 0x7ffn },
      { type: "Twalk", tag: 1, fid: 77, newfid: 78, wnames: [] },
      { type: "Tread", tag: 1, fid: 77, offset: 0n, count: 10 },
    ];
    for (const m of requests) {
      expect(await ask(m)).toEqual({ type: "Rlerror", tag: 1, ecode: ERRNO.EBADF });
    }
  });

  it("answers a walk through a file with ENOTDIR, or a short Rwalk after the first name", async () => {
    const { ask } = await session();
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["bad", "file.txt"] });
    expect(await ask({ type: "Twalk", tag: 2, fid: 1, newfid: 2, wnames: ["x"] })).toEqual({
      type: "Rlerror",
      tag: 2,
      ecode: ERRNO.ENOTDIR,
    });
    const short = await ask({ type: "Twalk", tag: 3, fid: 0, newfid: 2, wnames: ["bad", "file.txt", "x"] });
    expect(short.type === "Rwalk" && short.qids.length).toBe(2);
  });

  it("answers names with '/' or NUL with EINVAL and names over 255 bytes with ENAMETOOLONG", async () => {
    const { ask } = await session();
    for (const name of ["bad/file.txt", "a\0b", ""]) {
      expect(await ask({ type: "Twalk", tag: 4, fid: 0, newfid: 1, wnames: [name] })).toEqual({
        type: "Rlerror",
        tag: 4,
        ecode: ERRNO.EINVAL,
      });
    }
    expect(await ask({ type: "Twalk", tag: 4, fid: 0, newfid: 1, wnames: ["x".repeat(256)] })).toEqual({
      type: "Rlerror",
      tag: 4,
      ecode: ERRNO.ENAMETOOLONG,
    });
  });

  it("answers changes on a read-only share with EROFS", async () => {
    await put("ro", "bad/file.txt", "content");
    const r = await rawSession("ro");
    const ask = async (m: Parameters<typeof encode>[0]) => {
      r.send(encode(m, L));
      return decode(await r.next(), L);
    };
    await ask({ type: "Tversion", tag: 0xffff, msize: 8192, version: L });
    await ask({ type: "Tattach", tag: 1, fid: 0, afid: 0xffffffff, uname: "", aname: "", n_uname: 0 });
    await ask({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["bad", "file.txt"] });
    expect(await ask({ type: "Tlopen", tag: 1, fid: 1, flags: 1 })).toEqual({ type: "Rlerror", tag: 1, ecode: ERRNO.EROFS });
    expect(await ask({ type: "Tmkdir", tag: 1, dfid: 0, name: "d", mode: 0o755, gid: 0 })).toEqual({
      type: "Rlerror",
      tag: 1,
      ecode: ERRNO.EROFS,
    });
  });

  it("closes with 1003 on a text message", async () => {
    const { r } = await session();
    r.send("Tversion");
    expect((await r.closed()).code).toBe(1003);
  });

  it("closes with 1002 when the size field does not match the message", async () => {
    const { r } = await session();
    r.send(withSize(encode({ type: "Tclunk", tag: 1, fid: 0 }, L), 100));
    expect(await r.closed()).toEqual({ code: 1002, reason: "size field says 100 bytes, 11 arrived" });
  });

  it("closes with 1009 on a message over msize", async () => {
    const { r } = await session(8192);
    r.send(encode({ type: "Twrite", tag: 1, fid: 0, offset: 0n, data: new Uint8Array(8192) }, L));
    expect(await r.closed()).toEqual({ code: 1009, reason: "message of 8215 bytes exceeds msize 8192" });
  });

  it("closes with 4000 on a request before Tversion", async () => {
    const r = await rawSession();
    r.send(encode({ type: "Tclunk", tag: 1, fid: 0 }, L));
    expect((await r.closed()).code).toBe(4000);
  });

  it("leaves another session on the share reading correct bytes throughout", async () => {
    const { client: busy } = await mount("main", 65536);
    let reading = true;
    let rounds = 0;
    const reader = (async () => {
      while (reading) {
        expect(diff(await readFile(busy, "bad/data.bin"), DATA)).toBe("equal");
        rounds++;
      }
    })();
    // Every kind of bad input above, on other sockets, while it reads.
    for (const bad of [
      (b: Uint8Array) => withSize(b, 100),
      (b: Uint8Array) => b.subarray(0, 5),
      (b: Uint8Array) => ((b[4] = 200), b),
    ]) {
      const { r } = await session();
      r.send(bad(encode({ type: "Tclunk", tag: 1, fid: 0 }, L)));
      await Promise.race([r.next(1000).catch(() => null), r.closed()]);
    }
    const text = await rawSession();
    text.send("hello");
    await text.closed();
    const before = await rawSession();
    before.send(encode({ type: "Tclunk", tag: 1, fid: 0 }, L));
    await before.closed();
    const small = await rawSession();
    small.send(encode({ type: "Tversion", tag: 0xffff, msize: 512, version: L }, L));
    await small.next();
    reading = false;
    await reader;
    expect(rounds).toBeGreaterThan(0);
  });
});
