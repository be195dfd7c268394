// POSIX byte-range locks as a hostile client would use them: a lock the
// fid's open mode does not allow, locks past the caps, and many locks held
// while others lock, unlock and stat.

import { describe, expect, it } from "vitest";
import { type Client, ERRNO, LOCK_STATUS, LOCK_TYPE } from "../../protocol/index.ts";
import { openFile, walkTo, writeFile } from "./support/fs.ts";
import { mount, put } from "./support/gateway.ts";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;

/** Tlock, non-blocking unless `flags` says so. */
function lock(c: Client, fid: number, type: number, start = 0, length = 0, owner = { proc: 1, client: "host" }, flags = 0) {
  return c.request({
    type: "Tlock",
    fid,
    lock_type: type,
    flags,
    start: BigInt(start),
    length: BigInt(length),
    proc_id: owner.proc,
    client_id: owner.client,
  });
}

function getlock(c: Client, fid: number, type: number, start = 0, length = 0, owner = { proc: 1, client: "host" }) {
  return c.request({ type: "Tgetlock", fid, lock_type: type, start: BigInt(start), length: BigInt(length), proc_id: owner.proc, client_id: owner.client });
}

describe("a lock needs a fid open in a mode that allows it", () => {
  it("refuses a write lock on a fid open for reading and a read lock on one open for writing (EBADF)", async () => {
    const { client: a } = await mount();
    const { client: b } = await mount();
    await writeFile(a, "modes.txt", "0123456789");
    const ro = await openFile(a, "modes.txt", O_RDONLY);
    const wo = await openFile(a, "modes.txt", O_WRONLY);
    const rw = await openFile(a, "modes.txt", O_RDWR);
    await expect(lock(a, ro, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    await expect(lock(a, wo, LOCK_TYPE.RDLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    // The refused write lock left nothing: another session takes the whole file.
    const other = await openFile(b, "modes.txt", O_RDWR);
    expect((await lock(b, other, LOCK_TYPE.WRLCK, 0, 0, { proc: 9, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, other, LOCK_TYPE.UNLCK, 0, 0, { proc: 9, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    // What each mode allows.
    expect((await lock(a, ro, LOCK_TYPE.RDLCK, 0, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, wo, LOCK_TYPE.WRLCK, 4, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, rw, LOCK_TYPE.RDLCK, 8, 1)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, rw, LOCK_TYPE.WRLCK, 8, 1)).status).toBe(LOCK_STATUS.SUCCESS);
    // Unlocking is allowed on any open fid, whatever its mode (fs/locks.c
    // check_fmode_for_setlk checks only F_RDLCK and F_WRLCK).
    expect((await lock(a, ro, LOCK_TYPE.UNLCK, 4, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(a, wo, LOCK_TYPE.UNLCK, 0, 2)).status).toBe(LOCK_STATUS.SUCCESS);
    // Tgetlock is a query: any open fid may ask about either type.
    expect((await getlock(b, other, LOCK_TYPE.WRLCK)).lock_type).toBe(LOCK_TYPE.WRLCK);
    const rdOnly = await openFile(b, "modes.txt", O_RDONLY);
    expect((await getlock(b, rdOnly, LOCK_TYPE.WRLCK, 0, 8, { proc: 9, client: "b" })).lock_type).toBe(LOCK_TYPE.UNLCK);
  });

  it("refuses every lock request and query on a fid that is not open (EBADF)", async () => {
    const { client: c } = await mount();
    await writeFile(c, "unopened.txt", "x");
    const fid = await walkTo(c, "unopened.txt");
    for (const t of [LOCK_TYPE.RDLCK, LOCK_TYPE.WRLCK, LOCK_TYPE.UNLCK]) {
      await expect(lock(c, fid, t)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    }
    await expect(getlock(c, fid, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
  });

  it("gives no write lock on a read-only share, where no fid can be open for writing", async () => {
    await put("ro", "locked.txt", "read me");
    const { client: a } = await mount("ro");
    const { client: b } = await mount("ro");
    const fa = await openFile(a, "locked.txt", O_RDONLY);
    await expect(openFile(a, "locked.txt", O_RDWR)).rejects.toMatchObject({ errno: ERRNO.EROFS });
    await expect(lock(a, fa, LOCK_TYPE.WRLCK)).rejects.toMatchObject({ errno: ERRNO.EBADF });
    // Read locks are shared: a reader blocks no other reader.
    const fb = await openFile(b, "locked.txt", O_RDONLY);
    expect((await lock(a, fa, LOCK_TYPE.RDLCK)).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await lock(b, fb, LOCK_TYPE.RDLCK, 0, 0, { proc: 2, client: "b" })).status).toBe(LOCK_STATUS.SUCCESS);
    expect((await getlock(b, fb, LOCK_TYPE.WRLCK, 0, 0, { proc: 2, client: "b" })).lock_type).toBe(LOCK_TYPE.RDLCK);
  });
});
