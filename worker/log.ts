// The share object's log lines, at the level EDGE9P.log sets. A
// configuration that does not parse logs its errors: that is how an
// operator learns of it.

import type { Config } from "./config.ts";

export type LogLevel = Config["log"];

export interface Log {
  info(msg: string): void;
  error(msg: string): void;
}

const quiet = () => {};

export function logAt(level: LogLevel): Log {
  return {
    info: level === "info" ? (msg) => console.log(msg) : quiet,
    error: level === "off" ? quiet : (msg) => console.error(msg),
  };
}
