// The gateway's log lines (the Worker's and the share object's), at the
// level EDGE9P.log sets. A configuration that does not parse logs its
// errors: that is how an operator learns of it.

import type { Config, ConfigResult } from "./config.ts";

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

/** The log at a configuration's level; errors only when it did not parse. */
export function logFor(r: ConfigResult): Log {
  return logAt(r.ok ? r.config.log : "error");
}
