#!/usr/bin/env node
// Regenerates the TypeScript contracts and the descriptor set from proto/.
// With --if-stale it does nothing when the protos and generator config are
// unchanged since the last run (hash kept in .skein-build/).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashFiles, listFiles, repoRoot } from "./lib/files.mjs";

const root = repoRoot();
const inputs = [
  ...listFiles(join(root, "proto"), (f) => f.endsWith(".proto")),
  join(root, "buf.yaml"),
  join(root, "buf.gen.yaml"),
  join(root, "node_modules/ts-proto/package.json"),
];
const stamp = join(root, ".skein-build/proto.hash");
const outputs = [join(root, "packages/proto/src/gen"), join(root, "packages/proto/descriptors/skein.binpb")];
const hash = hashFiles(inputs);

if (process.argv.includes("--if-stale") && outputs.every(existsSync) && existsSync(stamp) && readFileSync(stamp, "utf8") === hash) {
  process.exit(0);
}
const buf = join(root, "node_modules/.bin/buf");
console.error("[skein] generating TypeScript contracts and the descriptor set from proto/ (buf)");
execFileSync(buf, ["generate"], { cwd: root, stdio: "inherit" });
mkdirSync(join(root, "packages/proto/descriptors"), { recursive: true });
execFileSync(buf, ["build", "-o", "packages/proto/descriptors/skein.binpb"], { cwd: root, stdio: "inherit" });
mkdirSync(join(root, ".skein-build"), { recursive: true });
writeFileSync(stamp, hash);
