// The 9P protocol core: pure TypeScript, no platform imports, shared by the
// worker, the bridge, the CLI, the tests and the benchmarks.

export * from "./constants.ts";
export { type Dialect, DIALECTS } from "./dialect.ts";
export * from "./errno.ts";
export * from "./errors.ts";
export type { Bytes, Text } from "./kinds.ts";
export * from "./structs.ts";
export * from "./messages.ts";
export * from "./codec.ts";
export * from "./io.ts";
export * from "./negotiate.ts";
export * from "./framer.ts";
export * from "./client.ts";
export * from "./resume.ts";
export * from "./names.ts";
export * from "./devices.ts";
export * from "./websocket.ts";
export * from "./leases.ts";
