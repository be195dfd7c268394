// The one node: module the worker uses, which workerd gives it with the
// `nodejs_als` compatibility flag (wrangler.toml): worker/sql-meter.ts.
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, fn: () => R): R;
  }
}
