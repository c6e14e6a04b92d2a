#!/usr/bin/env node
// Records the contracts as they land on main, for `buf breaking` in the tests.
// A clean clone has no earlier main to compare against, so the landed contract
// travels with the repository: refresh it (npm run proto:baseline) when a
// change to the protos lands, never to silence a breaking change.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
execFileSync(join(root, "node_modules/.bin/buf"), ["build", "-o", "test/fixtures/contracts-baseline.binpb"], {
  cwd: root,
  stdio: "inherit",
});
