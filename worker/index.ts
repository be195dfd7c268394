// The gateway worker: routes. The 9P route and the share's Durable Object
// arrive with "Serve a share" (issue 3).

import { Hono } from "hono";

const app = new Hono();

app.get("/healthz", (c) => c.json({ ok: true }));

export default app;
