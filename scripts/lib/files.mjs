// Node built-ins only: these scripts run before dependencies are installed.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function repoRoot() {
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

/** Files below dir (recursively, sorted) that pass keep. */
export function listFiles(dir, keep) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

/** One hash over the names and contents of the files (missing files count as empty). */
export function hashFiles(files) {
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f);
    h.update("\0");
    if (existsSync(f)) h.update(readFileSync(f));
    h.update("\0");
  }
  return h.digest("hex");
}
