// The requests a guest sent that have no reply yet, in the order sent, with
// the numbers the gateway gives them (protocol/resume.ts). On a resume they
// are replayed, in that order; a reply settles one by its tag.

import { MESSAGES, NOTAG, type ResumeHello, isNumbered } from "../protocol/index.ts";

const TFLUSH = MESSAGES.Tflush.id;
const RFLUSH = MESSAGES.Rflush.id;
const RVERSION = MESSAGES.Rversion.id;

interface Pending {
  /** Its number, or 0 for a request that may run again. */
  seq: number;
  tag: number;
  bytes: Uint8Array;
}

const typeOf = (m: Uint8Array) => m[4]!;
const tagOf = (m: Uint8Array) => m[5]! | (m[6]! << 8);

export class Outstanding {
  private nextSeq = 1;
  /** By arrival; keys are arrival counters, so a reused tag cannot shadow. */
  private readonly pending = new Map<number, Pending>();
  private arrivals = 0;

  get size(): number {
    return this.pending.size;
  }

  /** Records a request on its way to the gateway. */
  sent(bytes: Uint8Array): void {
    const seq = isNumbered(typeOf(bytes)) ? this.nextSeq++ : 0;
    this.pending.set(this.arrivals++, { seq, tag: tagOf(bytes), bytes });
  }

  /**
   * Settles the request a reply answers. False when none waits for it: a
   * duplicate, which must not reach the guest (its tag may be reused).
   */
  answered(reply: Uint8Array): boolean {
    const tag = tagOf(reply);
    const key = this.find(tag);
    if (key === null) return false;
    const req = this.pending.get(key)!;
    this.pending.delete(key);
    if (typeOf(reply) === RVERSION && tag === NOTAG) {
      // Tversion aborted everything sent before it (version(5)); what was
      // sent after it belongs to the new session.
      for (const k of [...this.pending.keys()]) if (k < key) this.pending.delete(k);
    } else if (typeOf(reply) === RFLUSH && typeOf(req.bytes) === TFLUSH) {
      // After Rflush the flushed request is over, answered or not (flush(5)).
      const old = this.find(req.bytes[7]! | (req.bytes[8]! << 8));
      if (old !== null) this.pending.delete(old);
    }
    return true;
  }

  /** The oldest pending request with this tag. */
  private find(tag: number): number | null {
    for (const [k, p] of this.pending) if (p.tag === tag) return k;
    return null;
  }

  /** What a resumed connection sends: the hello, then every pending request in order. */
  replay(): { hello: ResumeHello; messages: Uint8Array[] } {
    const all = [...this.pending.values()];
    return {
      hello: { replay: all.length, seqs: all.filter((p) => p.seq > 0).map((p) => p.seq), next: this.nextSeq },
      messages: all.map((p) => p.bytes),
    };
  }
}
