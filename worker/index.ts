// The worker's entry: the routes, and the share's Durable Object class.

import { createApp } from "./app.ts";

export { ShareObject } from "./share-object.ts";

export default createApp();
