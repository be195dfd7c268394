// The dispatch table: one handler per request type. A type without a
// handler answers EOPNOTSUPP (.L) or ENOSYS.

import type { HandlerTable } from "../session.ts";
import { attachWalk } from "./attach-walk.ts";
import { legacy } from "./legacy.ts";
import { read } from "./read.ts";
import { write } from "./write.ts";

export const HANDLERS: HandlerTable = { ...attachWalk, ...read, ...write, ...legacy };
