// A wrapper around an R2 binding that fails, throws or delays chosen calls,
// for tests of what the share does when R2 misbehaves (Miniflare never
// answers 429 or fails a call by itself). A test swaps it in inside the
// share's object (runInDurableObject, then ShareFs.setBucket), so it lives
// with the tests and no module of the worker imports it.

export type R2Method = "get" | "head" | "put" | "list" | "delete" | "createMultipartUpload" | "uploadPart" | "complete";

export interface Fault {
  method: R2Method;
  /** Only calls whose key starts with this (list: whose prefix does). */
  key?: string;
  /** How many matching calls fail (default: every one until cleared). */
  times?: number;
  /**
   * What happens: an error thrown (default), R2's 429, a delay before the
   * real call, a delay after it (the call took effect; its answer is late),
   * or no answer ever (the call took effect and the process died waiting:
   * abort the object next; nothing of it runs or logs afterwards).
   */
  kind?: "error" | "429" | "delay" | "late-answer" | "lost-answer";
  delayMs?: number;
}

export interface FaultLog {
  method: R2Method;
  key: string;
  injected: boolean;
  /** Refused as R2 refuses a second write of a key within a second. */
  rateLimited?: boolean;
  /** A ranged get's range (offset and length), for tests of which bytes were fetched. */
  range?: { offset: number; length: number };
}

/** R2's error for too many writes to one key (it allows about one a second). */
export function tooManyRequests(key: string): Error {
  return new Error(`put: Reduce your concurrent request rate for the same object: ${key} (10058) 429`);
}

export class FaultyBucket {
  readonly calls: FaultLog[] = [];
  private faults: Fault[] = [];
  /** With sameKeyPerSecond, a second put of one key within a second answers 429, as R2 does. */
  private readonly lastPut = new Map<string, number>();

  constructor(
    private readonly inner: R2Bucket,
    private opts: { sameKeyPerSecond?: boolean } = {},
  ) {}

  set(faults: Fault[]): void {
    this.faults = faults.map((f) => ({ ...f }));
  }

  /** Changes the options of a wrapper already in place (its log goes on). */
  configure(opts: { sameKeyPerSecond?: boolean }): void {
    this.opts = { ...opts };
  }

  clear(): void {
    this.faults = [];
  }

  /** Runs one call through the faults: returns its answer. */
  private async call<T>(method: R2Method, key: string, run: () => Promise<T>, range?: FaultLog["range"]): Promise<T> {
    const late = await this.gate(method, key, range);
    const answer = await run();
    if (late === Infinity) await new Promise(() => {});
    if (late > 0) await new Promise((r) => setTimeout(r, late));
    return answer;
  }

  /** Applies a fault before the call; returns how long to hold its answer. */
  private async gate(method: R2Method, key: string, range?: FaultLog["range"]): Promise<number> {
    const f = this.faults.find((x) => x.method === method && (x.key === undefined || key.startsWith(x.key)) && x.times !== 0);
    const log: FaultLog = { method, key, injected: f !== undefined && f.kind !== "delay" && f.kind !== "late-answer" && f.kind !== "lost-answer" };
    if (range) log.range = range;
    this.calls.push(log);
    if (method === "put" && this.opts.sameKeyPerSecond && !log.injected) {
      const last = this.lastPut.get(key);
      const now = Date.now();
      if (last !== undefined && now - last < 1000) {
        log.rateLimited = true;
        throw tooManyRequests(key);
      }
      this.lastPut.set(key, now);
    }
    if (!f) return 0;
    if (f.times !== undefined) f.times--;
    if (f.kind === "late-answer") return f.delayMs ?? 100;
    if (f.kind === "lost-answer") return Infinity;
    if (f.kind === "delay") {
      await new Promise((r) => setTimeout(r, f.delayMs ?? 100));
      return 0;
    }
    throw f.kind === "429" ? tooManyRequests(key) : new Error(`injected R2 failure: ${method} ${key}`);
  }

  /** The wrapper, typed as the binding it stands for. */
  asBucket(): R2Bucket {
    const inner = this.inner;
    const call = <T>(m: R2Method, k: string, run: () => Promise<T>, range?: FaultLog["range"]) => this.call(m, k, run, range);
    const wrapUpload = (u: R2MultipartUpload): R2MultipartUpload =>
      ({
        key: u.key,
        uploadId: u.uploadId,
        uploadPart: (n: number, v: never, o?: never) => call("uploadPart", u.key, () => u.uploadPart(n, v, o)),
        abort: () => u.abort(),
        complete: (parts: R2UploadedPart[]) => call("complete", u.key, () => u.complete(parts)),
      }) as R2MultipartUpload;
    return {
      head: (k: string) => call("head", k, () => inner.head(k)),
      get: (k: string, o?: R2GetOptions) => call("get", k, () => inner.get(k, o as never), rangeOf(o)),
      put: (k: string, v: never, o?: R2PutOptions) => call("put", k, () => inner.put(k, v, o)),
      list: (o?: R2ListOptions) => call("list", o?.prefix ?? "", () => inner.list(o)),
      delete: (k: string | string[]) => call("delete", Array.isArray(k) ? k.join(",") : k, () => inner.delete(k)),
      createMultipartUpload: async (k: string, o?: R2MultipartOptions) =>
        wrapUpload(await call("createMultipartUpload", k, () => inner.createMultipartUpload(k, o))),
      resumeMultipartUpload: (k: string, id: string) => wrapUpload(inner.resumeMultipartUpload(k, id)),
    } as unknown as R2Bucket;
  }
}

/** The {offset, length} range of a get's options, if it names one that way. */
function rangeOf(o?: R2GetOptions): FaultLog["range"] {
  const r = o?.range as { offset?: number; length?: number } | undefined;
  return r && typeof r.offset === "number" && typeof r.length === "number" ? { offset: r.offset, length: r.length } : undefined;
}
