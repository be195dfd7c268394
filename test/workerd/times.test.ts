// Times to the nanosecond on every kind of inode (pjdfstest utimensat/08.t's
// 100000000.1 and 200000000.2 s), through a restart, a publish, a listing of
// R2 again, and a share that lists the published objects afresh.

import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ATTR, type Client } from "../../protocol/index.ts";
import { clunk, create, getattr, mkdir, setattr, walkTo } from "./support/fs.ts";
import { BUCKET, mount, shareObject, sleep } from "./support/gateway.ts";

const ATIME = [100000000, 100000000] as const;
const MTIME = [200000000, 200000000] as const;
const SET_TIMES = ATTR.ATIME | ATTR.MTIME | ATTR.ATIME_SET | ATTR.MTIME_SET;

/** One of each kind in `dir`: a file, a directory, a symlink, a FIFO and a socket. */
async function kinds(c: Client, dir: string): Promise<string[]> {
  await mkdir(c, dir);
  await clunk(c, await create(c, `${dir}/file`));
  await mkdir(c, `${dir}/dir`);
  const d = await walkTo(c, dir);
  await c.request({ type: "Tsymlink", fid: d, name: "link", symtgt: "file", gid: 0 });
  await c.request({ type: "Tmknod", dfid: d, name: "fifo", mode: 0o010644, major: 0, minor: 0, gid: 0 });
  await c.request({ type: "Tmknod", dfid: d, name: "sock", mode: 0o140644, major: 0, minor: 0, gid: 0 });
  await clunk(c, d);
  return ["file", "dir", "link", "fifo", "sock"].map((n) => `${dir}/${n}`);
}

async function timesOf(c: Client, path: string) {
  const a = await getattr(c, path);
  return { path, atime: [Number(a.atime_sec), Number(a.atime_nsec)], mtime: [Number(a.mtime_sec), Number(a.mtime_nsec)] };
}

const expected = (path: string) => ({ path, atime: [...ATIME], mtime: [...MTIME] });

describe("times to the nanosecond", () => {
  it("are kept as Tsetattr sets them on a file, a directory, a symlink, a FIFO and a socket, also after a restart", async () => {
    const { client: c } = await mount();
    const paths = await kinds(c, "ns-set");
    for (const p of paths) await setattr(c, p, { valid: SET_TIMES, atime: [...ATIME], mtime: [...MTIME] });
    for (const p of paths) expect(await timesOf(c, p)).toEqual(expected(p));
    await abortAllDurableObjects();
    const { client: d } = await mount();
    for (const p of paths) expect(await timesOf(d, p)).toEqual(expected(p));
  });

  it("survive their publish and the next listing of R2", async () => {
    const { client: c } = await mount();
    const paths = await kinds(c, "ns-pub");
    for (const p of paths) await setattr(c, p, { valid: SET_TIMES, atime: [...ATIME], mtime: [...MTIME] });
    await shareObject().publishAll();
    await sleep(1100); // past dir_revalidate_ms: the next lookup lists R2 again
    for (const p of paths) expect(await timesOf(c, p)).toEqual(expected(p));
  });

  it("reach R2 in the s3fs form (seconds, '.', nine digits), so a share listing the objects afresh reads them to the nanosecond", async () => {
    const { client: c } = await mount();
    // (A directory listed afresh is not among them: its marker's metadata is not read.)
    const paths = (await kinds(c, "ns-r2")).filter((p) => !p.endsWith("/dir"));
    for (const p of paths) await setattr(c, p, { valid: SET_TIMES, atime: [...ATIME], mtime: [...MTIME] });
    await shareObject().publishAll();
    expect((await BUCKET.head("main/ns-r2/link"))!.customMetadata).toMatchObject({
      mode: String(0o120777),
      atime: "100000000.100000000",
      mtime: "200000000.200000000",
    });
    // Another share (its own Durable Object, which never saw these files)
    // given the same objects: what it knows of them is what R2 holds.
    for (const p of paths) {
      const obj = (await BUCKET.get(`main/${p}`))!;
      await BUCKET.put(`other/deeper/${p}`, await obj.arrayBuffer(), { customMetadata: obj.customMetadata });
    }
    const { client: o } = await mount("other");
    for (const p of paths) expect(await timesOf(o, p)).toEqual(expected(p));
  });
});
