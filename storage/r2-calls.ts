// Counts a share's R2 calls by method, for its stats: at tens of
// milliseconds a call in production, the calls an operation makes are what
// it costs (issue 15). A wrapper around the binding; counting is all it does.

export interface R2Calls {
  get: number;
  head: number;
  put: number;
  list: number;
  delete: number;
  /** createMultipartUpload, uploadPart, complete and abort together. */
  multipart: number;
}

export const noCalls = (): R2Calls => ({ get: 0, head: 0, put: 0, list: 0, delete: 0, multipart: 0 });

/** The binding, counting each call into `n`. */
export function countedBucket(inner: R2Bucket, n: R2Calls): R2Bucket {
  const upload = (u: R2MultipartUpload): R2MultipartUpload =>
    ({
      key: u.key,
      uploadId: u.uploadId,
      uploadPart: (part: number, v: never, o?: never) => (n.multipart++, u.uploadPart(part, v, o)),
      abort: () => (n.multipart++, u.abort()),
      complete: (parts: R2UploadedPart[]) => (n.multipart++, u.complete(parts)),
    }) as R2MultipartUpload;
  return {
    head: (k: string) => (n.head++, inner.head(k)),
    get: (k: string, o?: R2GetOptions) => (n.get++, inner.get(k, o as never)),
    put: (k: string, v: never, o?: R2PutOptions) => (n.put++, inner.put(k, v, o)),
    list: (o?: R2ListOptions) => (n.list++, inner.list(o)),
    delete: (k: string | string[]) => (n.delete++, inner.delete(k)),
    createMultipartUpload: async (k: string, o?: R2MultipartOptions) => (n.multipart++, upload(await inner.createMultipartUpload(k, o))),
    resumeMultipartUpload: (k: string, id: string) => upload(inner.resumeMultipartUpload(k, id)),
  } as unknown as R2Bucket;
}
