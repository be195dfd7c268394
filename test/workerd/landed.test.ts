// A restart (a deploy, a crash) that cuts a publish after its object landed
// in R2 but before the object recorded it: the next start must take that
// object for the file's own, not for another tool's. Otherwise the next
// publish of the file would find "someone else's" object at its key and keep
// it as `<key>.conflict-<etag>`, a file nobody wrote (seen through a Linux
// mount as an extra file after gateway restarts: docs/design.md, "A publish
// cut by a restart").

import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FaultyBucket } from "./support/faults.ts";
import type { ShareFs } from "../../storage/share-fs.ts";
import type { ShareObject } from "../../worker/share-object.ts";
import { cat, mkdir, rename, utf8, writeFile } from "./support/fs.ts";
import { BUCKET, listDir, mount, shareObject, sleep } from "./support/gateway.ts";

/**
 * Starts a publish inside the object whose put of `key` lands and is never
 * answered, waits for the object to land, and restarts the object: a kill
 * at that moment. No request of the test is in flight when the object is
 * aborted, and nothing of the old object runs (or logs) afterwards: a
 * console line from an aborted object can stall vitest-pool-workers
 * (workers-sdk issues 14180, 15498).
 */
async function cutAfterLanding(key: string): Promise<void> {
  await runInDurableObject(shareObject(), async (obj: ShareObject) => {
    const fs = (obj as unknown as { ready: { fs: ShareFs } }).ready.fs;
    const f = new FaultyBucket(fs.r2);
    f.set([{ method: "put", key, kind: "lost-answer", times: 1 }]);
    fs.setBucket(f.asBucket());
    void fs.publishAll().catch(() => {});
  });
  for (let i = 0; i < 100 && (await BUCKET.head(key)) === null; i++) await sleep(20);
  expect(await BUCKET.head(key), "the object landed").not.toBeNull();
  await abortAllDurableObjects();
}

async function keys(prefix: string): Promise<string[]> {
  return (await BUCKET.list({ prefix })).objects.map((o) => o.key).sort();
}

const names = async (c: Parameters<typeof listDir>[0], dir: string) => (await listDir(c, dir)).entries.map((e) => e.name).filter((n) => n !== "." && n !== "..").sort();

describe("a publish cut by a restart after its object landed", () => {
  it("is republished over, with no conflict copy", { timeout: 20_000 }, async () => {
    const { client: a } = await mount();
    await mkdir(a, "landed1");
    await writeFile(a, "landed1/f1", "first version");
    await shareObject().publishAll(); // the directory's marker, so only the file's publish is cut
    await writeFile(a, "landed1/f2", "written through a temporary name");
    await cutAfterLanding("main/landed1/f2");
    await shareObject().publishAll();
    expect(await keys("main/landed1/")).toEqual(["main/landed1/", "main/landed1/f1", "main/landed1/f2"]);
    await sleep(1100); // past dir_revalidate_ms: listed again
    const { client: c } = await mount();
    expect(await names(c, "landed1")).toEqual(["f1", "f2"]);
    expect(utf8(await cat(c, "landed1/f2"))).toBe("written through a temporary name");
  });

  it("of a temporary name renamed after the restart: one object at the final name, nothing else", { timeout: 20_000 }, async () => {
    const { client: a } = await mount();
    await mkdir(a, "landed2");
    await writeFile(a, "landed2/keep", "k");
    await shareObject().publishAll();
    await writeFile(a, "landed2/f.tmp", "the guest's yes | head > f.tmp");
    await cutAfterLanding("main/landed2/f.tmp");
    // The restarted object publishes what is due before the bridge replays the mv.
    await shareObject().publishAll();
    const { client: c } = await mount();
    await rename(c, "landed2/f.tmp", "landed2/f");
    await shareObject().publishAll();
    expect(await keys("main/landed2/")).toEqual(["main/landed2/", "main/landed2/f", "main/landed2/keep"]);
    await sleep(1100);
    expect(await names(c, "landed2")).toEqual(["f", "keep"]);
    expect(utf8(await cat(c, "landed2/f"))).toBe("the guest's yes | head > f.tmp");
  });

  it("of a published file renamed (mv f g): one object at the new name, the old one deleted", { timeout: 20_000 }, async () => {
    const { client: a } = await mount();
    await mkdir(a, "landed3");
    await writeFile(a, "landed3/f", "moved once published");
    await shareObject().publishAll();
    await rename(a, "landed3/f", "landed3/g");
    await cutAfterLanding("main/landed3/g");
    await shareObject().publishAll();
    expect(await keys("main/landed3/")).toEqual(["main/landed3/", "main/landed3/g"]);
    await sleep(1100);
    const { client: c } = await mount();
    expect(await names(c, "landed3")).toEqual(["g"]);
    expect(utf8(await cat(c, "landed3/g"))).toBe("moved once published");
  });
});
