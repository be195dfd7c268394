// `edge9p <command>`: dispatches to the subcommands.

import { readFileSync } from "node:fs";
import { bridgeCommand } from "../bridge/command.ts";
import { FILES_USAGE, filesCommand } from "./files.ts";
import { ROTATE_USAGE, rotateCommand } from "./rotate.ts";
import { tokenCommand } from "./token.ts";

const USAGE = `usage: edge9p <command> [options]

commands:
  bridge     9P over TCP <-> 9P over WebSocket, for Linux guests (edge9p bridge --help)
  ls, cat, cp, mkdir, rm, mv
             a share's files without a mount (below)
  token      make a bearer token for a share (or the operator) and print its SHA-256
  rotate-links
             revoke every signed link of a share (needs the operator token)
  help       this text
  version    print the version

${FILES_USAGE}
${ROTATE_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "bridge":
      return bridgeCommand(rest);
    case "token":
      return tokenCommand(rest);
    case "rotate-links":
      return rotateCommand(rest);
    case "ls":
    case "cat":
    case "cp":
    case "mkdir":
    case "rm":
    case "mv":
      return filesCommand(cmd, rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    case "version":
    case "--version": {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
      process.stdout.write(`edge9p ${pkg.version}\n`);
      return 0;
    }
    default:
      process.stderr.write(`edge9p: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
      return 2;
  }
}
