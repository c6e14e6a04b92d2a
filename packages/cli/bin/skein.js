#!/usr/bin/env node
// The `skein` command; the code is compiled to ../dist (npx tsc -b packages/cli).
import { main } from "../dist/main.js";

// `skein session ls | head` closes our stdout early: that is not an error.
process.stdout.on("error", (err) => process.exit(err.code === "EPIPE" ? 0 : 1));
process.on("uncaughtException", (err) => {
  process.stderr.write(`skein: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

// grpc-js names the TLS server by IP for IP addresses, which Node flags as deprecated: noise for a CLI user.
process.noDeprecation = true;

const code = await main(process.argv.slice(2));
// Open channels and stdin would keep the process alive; everything is written by now.
process.exit(code);
