// A shape is an ordered list of named fields, some present only in certain
// dialects. Structures (qid, stat, dirent) and every message body are shapes;
// their TypeScript types are derived from them too.

import type { Reader } from "./buffer-reader.ts";
import type { Writer } from "./buffer-writer.ts";
import type { Dialect } from "./dialect.ts";
import type { Kind } from "./kinds.ts";

/** A field of a shape: its kind, and the dialects it exists in (null = all). */
export interface Field<Out, In, Opt extends boolean> {
  readonly kind: Kind<Out, In>;
  readonly only: readonly Dialect[] | null;
  readonly optional: Opt;
}

// `any` is needed for variance: a Kind is both consumed and produced.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKind = Kind<any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyField = Field<any, any, boolean>;
export type ShapeInit = Record<string, AnyKind | AnyField>;

/** A field that exists only in the given dialects (optional in the types). */
export function only<Out, In>(dialects: readonly Dialect[], kind: Kind<Out, In>): Field<Out, In, true> {
  return { kind, only: dialects, optional: true };
}

type Norm<X> =
  X extends Field<infer O, infer I, infer P>
    ? Field<O, I, P>
    : X extends Kind<infer O, infer I>
      ? Field<O, I, false>
      : never;
type Fields<S extends ShapeInit> = { [K in keyof S]: Norm<S[K]> };

type ReqKeys<F> = { [K in keyof F]: F[K] extends Field<unknown, unknown, false> ? K : never }[keyof F];
type OptKeys<F> = Exclude<keyof F, ReqKeys<F>>;
type OutOfField<X> = X extends Field<infer O, infer _I, infer _P> ? O : never;
type InOfField<X> = X extends Field<infer _O, infer I, infer _P> ? I : never;
type Flat<T> = { [K in keyof T]: T[K] };

/** The decoded value of a shape. */
export type OutOf<S extends ShapeInit> = Flat<
  { [K in ReqKeys<Fields<S>>]: OutOfField<Fields<S>[K]> } & {
    [K in OptKeys<Fields<S>>]?: OutOfField<Fields<S>[K]>;
  }
>;
/** The value of a shape accepted for encoding. */
export type InOf<S extends ShapeInit> = Flat<
  { [K in ReqKeys<Fields<S>>]: InOfField<Fields<S>[K]> } & {
    [K in OptKeys<Fields<S>>]?: InOfField<Fields<S>[K]>;
  }
>;

export interface FieldEntry {
  readonly name: string;
  readonly kind: AnyKind;
  readonly only: readonly Dialect[] | null;
}

/** The runtime form of a shape: fields in wire order. */
export class Shape<S extends ShapeInit> {
  readonly fields: readonly FieldEntry[];
  private readonly byDialect = new Map<Dialect, readonly FieldEntry[]>();

  constructor(init: S) {
    this.fields = Object.entries(init).map(([name, f]) =>
      "kind" in f ? { name, kind: f.kind, only: f.only } : { name, kind: f, only: null },
    );
  }

  /** The fields present in a dialect, in wire order. */
  in(d: Dialect): readonly FieldEntry[] {
    let fs = this.byDialect.get(d);
    if (fs === undefined) {
      fs = this.fields.filter((f) => f.only === null || f.only.includes(d));
      this.byDialect.set(d, fs);
    }
    return fs;
  }

  fixed(d: Dialect): number {
    let n = 0;
    for (const f of this.in(d)) n += f.kind.fixed(d);
    return n;
  }

  size(v: InOf<S>, d: Dialect): number {
    let n = 0;
    const rec = v as Record<string, unknown>;
    for (const f of this.in(d)) n += f.kind.size(present(rec, f), d);
    return n;
  }

  read(r: Reader, d: Dialect, into: Record<string, unknown> = {}): OutOf<S> {
    for (const f of this.in(d)) into[f.name] = f.kind.read(r, d);
    return into as OutOf<S>;
  }

  write(w: Writer, v: InOf<S>, d: Dialect): void {
    const rec = v as Record<string, unknown>;
    for (const f of this.in(d)) f.kind.write(w, present(rec, f), d);
  }

  show(v: OutOf<S> | InOf<S>, d: Dialect): string {
    const rec = v as Record<string, unknown>;
    const parts: string[] = [];
    for (const f of this.in(d)) {
      if (rec[f.name] !== undefined) parts.push(`${f.name}=${f.kind.show(rec[f.name])}`);
    }
    return parts.join(" ");
  }
}

function present(rec: Record<string, unknown>, f: FieldEntry): unknown {
  const v = rec[f.name];
  if (v === undefined) throw new TypeError(`field ${f.name} is required`);
  return v;
}

/** A shape used as a field kind (qid inside Rattach, for instance). */
export function struct<S extends ShapeInit>(label: string, init: S): Kind<OutOf<S>, InOf<S>> & { shape: Shape<S> } {
  const shape = new Shape(init);
  return {
    label,
    shape,
    fixed: (d) => shape.fixed(d),
    size: (v, d) => shape.size(v, d),
    read: (r, d) => shape.read(r, d),
    write: (w, v, d) => shape.write(w, v, d),
    show: (v) => `(${shape.show(v, "9P2000.u")})`,
  };
}
