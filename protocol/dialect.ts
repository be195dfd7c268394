/** The three dialects a session may speak, chosen by Tversion. */
export type Dialect = "9P2000" | "9P2000.u" | "9P2000.L";

export const DIALECTS: readonly Dialect[] = ["9P2000", "9P2000.u", "9P2000.L"];

/** Dialect groups the message table uses. */
export const ALL: readonly Dialect[] = DIALECTS;
export const LEGACY: readonly Dialect[] = ["9P2000", "9P2000.u"];
export const DOTU: readonly Dialect[] = ["9P2000.u"];
export const DOTL: readonly Dialect[] = ["9P2000.L"];
/** .u and .L: both carry n_uname in Tauth/Tattach (.L reuses the .u forms). */
export const UNIX: readonly Dialect[] = ["9P2000.u", "9P2000.L"];
