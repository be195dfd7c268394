// Figures about a share's object, for tests, benchmarks and operators
// (GET /v1/shares/NAME/stats).

import { type CacheStats, noCache } from "../storage/content-cache.ts";
import { Meta } from "../storage/meta.ts";
import type { PublishStats } from "../storage/publisher.ts";
import { type R2Calls, noCalls } from "../storage/r2-calls.ts";
import { type ReadaheadStats, noReadahead } from "../storage/readahead.ts";
import type { SessionStore } from "./session-store.ts";
import { type LeaseStats } from "./leases.ts";
import type { Ready } from "./share-setup.ts";
import type { Sockets } from "./sockets.ts";
import type { SqlMeter, WriteTally } from "./sql-meter.ts";

export interface ShareStats {
  share: string | null;
  /** Constructions of this object: each wake-up from hibernation adds one. */
  boots: number;
  sessions: number;
  sockets: number;
  /** R2 list calls since the object was constructed. */
  listCalls: number;
  /** Bytes written and not yet published. */
  journalBytes: number;
  publish: PublishStats | null;
  inflightBytes: number;
  /** Most reply bytes held at once since the object was constructed. */
  inflightHighWater: number;
  /** Reply bytes sent on the share's sockets and not yet read by their clients. */
  unreadBytes: number;
  /** Sockets closed because their clients left replies unread (4006). */
  notReading: number;
  /** Unread bytes on sockets the gateway closed whose peers have not gone yet. */
  strandedBytes: number;
  /** The content cache: hits, misses, fills, evictions, bytes and entries held, its bounds. */
  cache: CacheStats;
  /** Readahead: reads served from it, misses, fetches, the windows. */
  readahead: ReadaheadStats;
  /** R2 calls since the object was constructed, by method. */
  r2Calls: R2Calls;
  /**
   * SQLite rows written since the object was constructed, by what wrote
   * them: each 9P request type (by the type byte of the messages
   * received), "fid flush" (the batch of worker/session.ts), "cache fill"
   * (the content cache's rows, after the replies: storage/read-path.ts), "alarm",
   * "fetch" (a socket's opening, the files route), "close", "start" (the
   * constructor), "text" (acks, a resume's hello), "other".
   */
  writes: Record<string, WriteTally>;
  /** Leases (docs/leases.md): inodes granted, recalls sent, acks, recalls void by term, leases held, replies that waited and for how long; null when the share grants none. */
  leases: LeaseStats | null;
}

/** What the figures are read from. */
export interface StatsSources {
  meter: SqlMeter;
  store: SessionStore;
  sockets: Sockets;
  ready: Ready | null;
  leases: { stats(): LeaseStats } | null;
}

export function shareStats({ meter, store, sockets, ready, leases }: StatsSources): ShareStats {
  // Counted in the constructor: each wake-up from hibernation is one.
  const boots = new Meta(meter.sql).get("boots") as number;
  const storage = ready?.fs.storageStats();
  return {
    share: ready?.name ?? null,
    boots,
    sessions: store.count(),
    sockets: sockets.all().length,
    listCalls: ready?.fs.listCalls ?? 0,
    journalBytes: storage?.journalBytes ?? 0,
    publish: storage?.publish ?? null,
    inflightBytes: ready?.budget.inUse ?? 0,
    inflightHighWater: ready?.budget.highWater ?? 0,
    unreadBytes: sockets.unread(),
    notReading: sockets.notReading,
    strandedBytes: sockets.stranded,
    cache: storage?.cache ?? noCache(),
    readahead: storage?.readahead ?? noReadahead(),
    r2Calls: { ...(ready?.fs.r2Calls ?? noCalls()) },
    writes: meter.snapshot(),
    leases: leases?.stats() ?? null,
  };
}
