// The share a Durable Object serves, built from EDGE9P: its configuration,
// its filesystem (storage/share-fs.ts) over its bucket and the object's
// SQLite, and the object's in-flight byte budget.

import { ShareFs } from "../storage/share-fs.ts";
import { Meta } from "../storage/meta.ts";
import { ByteBudget } from "./budget.ts";
import { type Config, type ShareConfig, objectName } from "./config.ts";
import { bucketOf, configOf, fsidOf } from "./env.ts";
import type { Log } from "./log.ts";
import type { SessionStore } from "./session-store.ts";
import type { SqlMeter } from "./sql-meter.ts";

/** A share the object is ready to serve. */
export interface Ready {
  name: string;
  share: ShareConfig;
  config: Config;
  fs: ShareFs;
  /** Bytes the object holds for its clients: one budget for the object's life. */
  budget: ByteBudget;
}

/**
 * Builds share `name`'s filesystem; null (and a log line) if the
 * configuration is bad. `prev` is what the object served until now: its
 * budget carries on.
 */
export function openShare(env: object, meter: SqlMeter, store: SessionStore, log: Log, prev: Ready | null, name: string): Ready | null {
  const c = configOf(env);
  if (!c.ok) {
    log.error(c.error);
    return null;
  }
  const share = c.config.shares[name];
  if (!share) {
    log.error(`share ${name} is no longer configured`);
    return null;
  }
  const sql = meter.sql;
  const budget = prev?.budget ?? new ByteBudget(c.config.inflight_bytes);
  const oname = objectName(share);
  const fs = new ShareFs(
    sql,
    bucketOf(env, share, c.config),
    {
      prefix: share.prefix,
      uid: share.uid,
      gid: share.gid,
      fileMode: share.file_mode,
      dirMode: share.dir_mode,
      revalidateMs: c.config.dir_revalidate_ms,
      quotaBytes: c.config.quota_bytes,
      fsid: fsidOf(oname),
      journalCap: c.config.journal_cap_bytes,
      maxFileBytes: c.config.max_file_bytes,
      // Parts are read into buffers taken from the budget.
      partMaxBytes: c.config.inflight_bytes,
      publishDelayMs: c.config.publish_delay_ms,
      multipartThreshold: c.config.multipart_threshold,
      maxDepth: c.config.max_depth,
      maxLocksPerSession: c.config.max_locks_per_session,
      maxLocksPerInode: c.config.max_locks_per_inode,
      maxLocks: c.config.max_locks,
      // parseConfig settles it; refused if it somehow did not.
      deviceNodes: share.device_nodes === true,
      readaheadBytes: c.config.readahead_bytes,
      cacheBytes: c.config.content_cache_bytes,
      cacheFileBytes: c.config.content_cache_file_bytes,
    },
    (msg) => log.info(`[${name}] ${msg}`),
    (n) => budget.acquire(n),
    // Readahead and cache fills hold bytes for a while: never the budget's last half, which replies keep.
    (n) => budget.tryAcquire(n, budget.limit / 2),
    // The content cache's writes, after the reply: a 9P reply is sent in the
    // same run of microtasks as its read ends (Session.run: handler, reply,
    // outbox.send, no await between), so a timer runs after it; and its
    // rows are counted as their own kind, not as the request's (a timer
    // keeps the async context it was set in).
    (what, f) => void setTimeout(() => meter.run(what, f), 0),
  );
  // Open counts live in memory (storage/namespace.ts): counted again from the fids that have rows.
  fs.countOpens(store.openNodes());
  new Meta(sql).set("share", name);
  return { name, share, config: c.config, fs, budget };
}
