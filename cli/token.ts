// `edge9p token [--hash TOKEN]`: makes a new random bearer token and prints
// it with its SHA-256, the form the configuration keeps.

import { createHash, randomBytes } from "node:crypto";

export function tokenCommand(argv: string[]): number {
  if (argv[0] === "--hash") {
    if (!argv[1]) {
      process.stderr.write("usage: edge9p token [--hash TOKEN]\n");
      return 2;
    }
    process.stdout.write(`${createHash("sha256").update(argv[1]).digest("hex")}\n`);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write("usage: edge9p token [--hash TOKEN]\n");
    return 2;
  }
  // 32 random bytes as base64url: 43 characters a WebSocket subprotocol may carry.
  const token = randomBytes(32).toString("base64url");
  const hash = createHash("sha256").update(token).digest("hex");
  process.stdout.write(
    [
      "token (give it to the clients: edge9p bridge --token, EDGE9P_TOKEN; it is kept nowhere else):",
      `  ${token}`,
      "its SHA-256, for the share's token_hashes (or, for an operator token, operator_token_hashes) in the configuration:",
      `  ${hash}`,
      "",
    ].join("\n"),
  );
  return 0;
}
