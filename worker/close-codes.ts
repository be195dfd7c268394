// WebSocket close codes: defined in protocol/websocket.ts, where the bridge
// and the other clients read them too.

export { CLOSE } from "../protocol/websocket.ts";
