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
const say = (msg: string) => console.log(msg);
const complain = (msg: string) => console.error(msg);

const LOGS: Record<LogLevel, Log> = {
  info: { info: say, error: complain },
  error: { info: quiet, error: complain },
  off: { info: quiet, error: quiet },
};

export function logAt(level: LogLevel): Log {
  return LOGS[level];
}
