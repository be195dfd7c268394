// R2 faults in a share's object: its binding wrapped in a FaultyBucket
// (faults.ts), kept across calls so that each test can change the faults
// and read one log of the calls. The wrapper lives in the object's memory:
// a restart drops it, and the object talks to R2 directly again.

import { runInDurableObject } from "cloudflare:test";
import { type Fault, type FaultLog, FaultyBucket } from "./faults.ts";
import type { ShareFs } from "../../../storage/share-fs.ts";
import type { ShareObject } from "../../../worker/share-object.ts";
import { shareObject } from "./gateway.ts";

type Faulty = { __faulty?: FaultyBucket };

const fsOf = (obj: ShareObject) => (obj as unknown as { ready: { fs: ShareFs } }).ready.fs;

/**
 * Sets the share's R2 faults (wrapping its binding first if need be); []
 * clears them. Options given apply to the wrapper from now on, whichever
 * test put it in; options left out stay as they were.
 */
export async function faults(list: Fault[], opts?: { sameKeyPerSecond?: boolean }, share = "main"): Promise<void> {
  await runInDurableObject(shareObject(share), async (obj: ShareObject) => {
    const fs = fsOf(obj);
    let f = (fs.r2 as unknown as Faulty).__faulty;
    if (!f) {
      f = new FaultyBucket(fs.r2);
      const b = f.asBucket() as unknown as Faulty;
      b.__faulty = f;
      fs.setBucket(b as unknown as R2Bucket);
    }
    if (opts) f.configure(opts);
    f.set(list);
  });
}

/** The R2 calls made through the wrapper since it was put in (empty without one). */
export async function faultCalls(share = "main"): Promise<FaultLog[]> {
  return runInDurableObject(shareObject(share), async (obj: ShareObject) => {
    return (fsOf(obj).r2 as unknown as Faulty).__faulty?.calls.slice() ?? [];
  });
}
