// R2's limits on objects and multipart uploads (developers.cloudflare.com/r2/reference/limits),
// and the part size the publisher derives from them. Pure: the configuration
// check (worker/config.ts) runs this in Node.

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The smallest part of a multipart upload (all parts but the last). */
export const MIN_PART = 5 * MiB;
/** The most parts one multipart upload may have. */
export const MAX_PARTS = 10_000;
/** The largest part: "5 MiB less than 5 GiB, so 4.995 GiB". */
export const MAX_PART = 5 * GiB - 5 * MiB;
/** The largest object: "5 GiB less than 5 TiB, so 4.995 TiB". */
export const MAX_OBJECT = 5 * 1024 * GiB - 5 * GiB;

/**
 * The part size of a multipart upload of `size` bytes: the smallest that
 * fits it into MAX_PARTS parts (R2 wants every part but the last the same
 * size, so it is fixed before the first part).
 */
export function partSizeFor(size: number): number {
  return Math.max(MIN_PART, Math.ceil(size / MAX_PARTS));
}
