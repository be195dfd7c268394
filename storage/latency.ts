// A model of R2 at a distance, for local runs only (EDGE9P.r2_latency_ms,
// refused on a deployed gateway). Locally R2 is Miniflare's, in the same
// process: every call answers in well under a millisecond, so a benchmark
// measures a best case production never has. On Cloudflare an R2 call from
// a Durable Object takes tens of milliseconds. This wrapper holds every
// call's answer for a fixed time, plus, with a bandwidth, the time its
// bytes would take, so paths can be judged by the round trips they make.

export interface LatencyModel {
  /** Added to every call (ms). */
  ms: number;
  /** Bytes per second a call's body moves at (0: no limit). */
  bytesPerSec: number;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** The binding, with every call's answer held as the model says. */
export function withLatency(inner: R2Bucket, m: LatencyModel): R2Bucket {
  const transfer = (bytes: number) => (m.bytesPerSec > 0 ? (bytes * 1000) / m.bytesPerSec : 0);
  const sizeOf = (v: unknown): number =>
    typeof v === "string" ? v.length : v instanceof ArrayBuffer ? v.byteLength : ArrayBuffer.isView(v) ? v.byteLength : 0;
  const held = async <T>(run: () => Promise<T>, bytes: (t: T) => number): Promise<T> => {
    const t = await run();
    await sleep(m.ms + transfer(bytes(t)));
    return t;
  };
  const none = () => 0;
  const upload = (u: R2MultipartUpload): R2MultipartUpload =>
    ({
      key: u.key,
      uploadId: u.uploadId,
      uploadPart: (n: number, v: never, o?: never) => held(() => u.uploadPart(n, v, o), () => sizeOf(v)),
      abort: () => held(() => u.abort(), none),
      complete: (parts: R2UploadedPart[]) => held(() => u.complete(parts), none),
    }) as R2MultipartUpload;
  return {
    head: (k: string) => held(() => inner.head(k), none),
    get: (k: string, o?: R2GetOptions) =>
      held(
        () => inner.get(k, o as never),
        (obj) => {
          if (!obj || !("body" in obj)) return 0;
          const r = (obj as R2ObjectBody).range as { length?: number } | undefined;
          return r?.length ?? obj.size;
        },
      ),
    put: (k: string, v: never, o?: R2PutOptions) => held(() => inner.put(k, v, o), () => sizeOf(v)),
    list: (o?: R2ListOptions) => held(() => inner.list(o), none),
    delete: (k: string | string[]) => held(() => inner.delete(k), none),
    createMultipartUpload: async (k: string, o?: R2MultipartOptions) => upload(await held(() => inner.createMultipartUpload(k, o), none)),
    resumeMultipartUpload: (k: string, id: string) => upload(inner.resumeMultipartUpload(k, id)),
  } as unknown as R2Bucket;
}
