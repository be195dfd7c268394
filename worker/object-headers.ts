// Headers the worker sets on a request it hands to a share's Durable Object:
// the worker's word to the object, after its checks. A module of their own,
// so that the routes need not import the object's module for four names;
// the worker drops any a client sends (worker/app.ts, clientHeaders).

/** The start of every edge9p header's name, these and the protocol's (protocol/resume.ts, protocol/negotiate.ts). */
export const HEADER_PREFIX = "X-Edge9p-";

/** The share the request is for. */
export const SHARE_HEADER = "X-Edge9p-Share";
/** GET .../files/<path>: the path, still percent-encoded. */
export const FILE_HEADER = "X-Edge9p-File";
/** A signed link instead of a token: "EXPIRES SIGNATURE", checked by the object. */
export const LINK_HEADER = "X-Edge9p-Link";
/** A signed 9P URL instead of a token: "EXPIRES ACCESS SIGNATURE", checked by the object. */
export const NINEP_LINK_HEADER = "X-Edge9p-9p-Link";
