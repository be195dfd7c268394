// fast-check arbitraries for every message, derived from the message table's
// field kinds, so new messages are covered without writing a generator.

import fc from "fast-check";
import { type Dialect, type MessageInit, type MessageSpec, MAXWELEM } from "../../../protocol/index.ts";
import type { FieldEntry } from "../../../protocol/shape.ts";

const str = fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));
const qid = fc.record({ type: fc.integer({ min: 0, max: 255 }), version: fc.nat(0xffffffff), path: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) });

function kindArb(f: FieldEntry, d: Dialect): fc.Arbitrary<unknown> {
  switch (f.kind.label) {
    case "u8":
      return fc.integer({ min: 0, max: 0xff });
    case "u16":
      return fc.integer({ min: 0, max: 0xffff });
    case "u32":
      return fc.nat(0xffffffff);
    case "u64":
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case "s":
      return str;
    case "data":
      return fc.uint8Array({ maxLength: 600 });
    case "qid":
      return qid;
    case "nwqid":
      return fc.array(qid, { maxLength: MAXWELEM });
    case "nwname":
      return fc.array(str, { maxLength: MAXWELEM });
    case "stat":
    case "nstat": {
      const fields: Record<string, fc.Arbitrary<unknown>> = {
        type: fc.integer({ min: 0, max: 0xffff }),
        dev: fc.nat(0xffffffff),
        qid,
        mode: fc.nat(0xffffffff),
        atime: fc.nat(0xffffffff),
        mtime: fc.nat(0xffffffff),
        length: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        name: str,
        uid: str,
        gid: str,
        muid: str,
      };
      if (d === "9P2000.u") {
        Object.assign(fields, { extension: str, n_uid: fc.nat(0xffffffff), n_gid: fc.nat(0xffffffff), n_muid: fc.nat(0xffffffff) });
      }
      return fc.record(fields);
    }
    default:
      throw new Error(`no arbitrary for kind ${f.kind.label}`);
  }
}

export function messageArb(spec: MessageSpec, d: Dialect): fc.Arbitrary<MessageInit> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of spec.shape.in(d)) fields[f.name] = kindArb(f, d);
  return fc
    .record({ tag: fc.integer({ min: 0, max: 0xffff }), body: fc.record(fields) })
    .map(({ tag, body }) => ({ type: spec.name, tag, ...body }) as MessageInit);
}
