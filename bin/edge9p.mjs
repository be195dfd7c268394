#!/usr/bin/env node
// The `edge9p` command. The sources are TypeScript; tsx loads them, so a
// clone works without a build step.
import { tsImport } from "tsx/esm/api";

const { main } = await tsImport("../cli/main.ts", import.meta.url);
process.exitCode = await main(process.argv.slice(2));
