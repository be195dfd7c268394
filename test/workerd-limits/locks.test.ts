// Lock caps (this gateway: 8 entries per session, 12 per file, 20 per share):
// past one a Tlock answers ENOLCK and changes nothing; entries count, not
// requests, so merging frees room and a split needs it.

import { describe, expect, it } from "vitest";
import { type Client, ERRNO, LOCK_STATUS, LOCK_TYPE } from "../../protocol/index.ts";
import { openFile, writeFile } from "../workerd/support/fs.ts";
import { mount } from "../workerd/support/gateway.ts";

function lock(c: Client, fid: number, type: number, start: number, length: number, proc = 1) {
  return c.request({ type: "Tlock", fid, lock_type: type, flags: 0, start: BigInt(start), length: BigInt(length), proc_id: proc, client_id: "host" });
}

/** The type of lock another owner sees on one byte (UNLCK: none). */
async function seen(c: Client, fid: number, at: number): Promise<number> {
  const r = await c.request({ type: "Tgetlock", fid, lock_type: LOCK_TYPE.WRLCK, start: BigInt(at), length: 1n, proc_id: 99, client_id: "observer" });
  return r.lock_type;
}

const ok = async (p: Promise<{ status: number }>) => expect((await p).status).toBe(LOCK_STATUS.SUCCESS);
const enolck = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ errno: ERRNO.ENOLCK });

describe("lock caps", () => {
  it("refuses a session's ninth lock entry, counting entries: a merge frees room, a split needs it", async () => {
    const a = await mount("main", 65536);
    const b = await mount("main", 65536);
    await writeFile(a.client, "caps-a.txt", "x");
    await writeFile(a.client, "caps-b.txt", "x");
    const f = await openFile(a.client, "caps-a.txt");
    const g = await openFile(a.client, "caps-b.txt");
    const obs = await openFile(b.client, "caps-a.txt");
    for (let i = 0; i < 8; i++) await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 2 * i, 1));
    await enolck(lock(a.client, f, LOCK_TYPE.WRLCK, 16, 1));
    expect(await seen(b.client, obs, 16)).toBe(LOCK_TYPE.UNLCK);
    // Another owner of the session, another file: the same session's count.
    await enolck(lock(a.client, f, LOCK_TYPE.WRLCK, 100, 1, 2));
    await enolck(lock(a.client, g, LOCK_TYPE.RDLCK, 0, 0));
    // Re-locking or changing the type of a held entry adds none.
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 2, 1));
    await ok(lock(a.client, f, LOCK_TYPE.RDLCK, 2, 1));
    expect(await seen(b.client, obs, 2)).toBe(LOCK_TYPE.RDLCK);
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 2, 1));
    // Bytes 1 and 3 join [0,1) [2,3) [4,5) into one entry: two freed.
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 1, 1));
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 3, 1));
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 16, 1));
    await ok(lock(a.client, f, LOCK_TYPE.WRLCK, 18, 1));
    await enolck(lock(a.client, f, LOCK_TYPE.WRLCK, 20, 1));
    // Unlocking byte 2 of [0,5) would leave two entries: refused, nothing changed.
    await enolck(lock(a.client, f, LOCK_TYPE.UNLCK, 2, 1));
    expect(await seen(b.client, obs, 2)).toBe(LOCK_TYPE.WRLCK);
    // Unlocking an end of it needs no room.
    await ok(lock(a.client, f, LOCK_TYPE.UNLCK, 4, 1));
    expect(await seen(b.client, obs, 4)).toBe(LOCK_TYPE.UNLCK);
    // Nor does releasing it all; then there is room again.
    await ok(lock(a.client, f, LOCK_TYPE.UNLCK, 0, 0));
    await ok(lock(a.client, g, LOCK_TYPE.RDLCK, 0, 0));
    await ok(lock(a.client, g, LOCK_TYPE.UNLCK, 0, 0));
    a.ws.close(1000);
    b.ws.close(1000);
  });

  it("refuses a file's thirteenth entry and the share's twenty-first, and takes them again once a session ends", async () => {
    const a = await mount("main", 65536);
    const b = await mount("main", 65536);
    await writeFile(a.client, "caps-c.txt", "x");
    await writeFile(a.client, "caps-d.txt", "x");
    await writeFile(a.client, "caps-e.txt", "x");
    const fa = await openFile(a.client, "caps-c.txt");
    const fb = await openFile(b.client, "caps-c.txt");
    const gb = await openFile(b.client, "caps-d.txt");
    for (let i = 0; i < 8; i++) await ok(lock(a.client, fa, LOCK_TYPE.WRLCK, 2 * i, 1));
    for (let i = 0; i < 4; i++) await ok(lock(b.client, fb, LOCK_TYPE.WRLCK, 100 + 2 * i, 1));
    // The file holds 12: b has room (5 of 8) but not on this file.
    await enolck(lock(b.client, fb, LOCK_TYPE.WRLCK, 200, 1));
    for (let i = 0; i < 4; i++) await ok(lock(b.client, gb, LOCK_TYPE.WRLCK, 2 * i, 1));
    // 16 held; a third session fills the share to 20.
    const c = await mount("main", 65536);
    const hc = await openFile(c.client, "caps-e.txt");
    for (let i = 0; i < 4; i++) await ok(lock(c.client, hc, LOCK_TYPE.WRLCK, 2 * i, 1));
    await enolck(lock(c.client, hc, LOCK_TYPE.WRLCK, 100, 1));
    // a leaves: its 8 entries go, from the file's count and the share's.
    a.ws.close(1000);
    for (let i = 0; i < 100 && (await seen(b.client, fb, 0)) !== LOCK_TYPE.UNLCK; i++) await new Promise((r) => setTimeout(r, 10));
    await ok(lock(c.client, hc, LOCK_TYPE.WRLCK, 100, 1));
    // b holds its 8: it makes room on another file, then locks where the file was full.
    await ok(lock(b.client, gb, LOCK_TYPE.UNLCK, 0, 1));
    await ok(lock(b.client, fb, LOCK_TYPE.WRLCK, 200, 1));
    b.ws.close(1000);
    c.ws.close(1000);
  });
});
