// Which R2 calls a share's object makes: its binding wrapped in the fault
// wrapper (faults.ts) with no faults, whose log records every call.
// The wrapper lives in the object's memory: install it again after a restart.

import { runInDurableObject } from "cloudflare:test";
import { FaultyBucket, type FaultLog } from "./faults.ts";
import type { ShareFs } from "../../../storage/share-fs.ts";
import type { ShareObject } from "../../../worker/share-object.ts";
import { shareObject } from "./gateway.ts";

type Watched = { __watch?: FaultyBucket };

/** Starts logging the share's R2 calls (a no-op if already logging). */
export async function watchR2(share = "main"): Promise<void> {
  await shareObject(share).statsOf(share); // makes sure the object has built its filesystem
  await runInDurableObject(shareObject(share), async (obj: ShareObject) => {
    const fs = (obj as unknown as { ready: { fs: ShareFs } }).ready.fs;
    if ((fs.r2 as unknown as Watched).__watch) return;
    const f = new FaultyBucket(fs.r2);
    const b = f.asBucket() as unknown as Watched;
    b.__watch = f;
    fs.setBucket(b as unknown as R2Bucket);
  });
}

/** The R2 calls logged since watchR2 (empty if not watching). */
export async function r2Calls(share = "main"): Promise<FaultLog[]> {
  return runInDurableObject(shareObject(share), async (obj: ShareObject) => {
    const fs = (obj as unknown as { ready: { fs: ShareFs } | null }).ready?.fs;
    return (fs?.r2 as unknown as Watched | undefined)?.__watch?.calls.slice() ?? [];
  });
}

/** R2 get calls logged for keys starting with `key`, after the first `since` calls of the log. */
export async function getsOf(key: string, since = 0, share = "main"): Promise<number> {
  return (await r2Calls(share)).slice(since).filter((c) => c.method === "get" && c.key.startsWith(key)).length;
}
