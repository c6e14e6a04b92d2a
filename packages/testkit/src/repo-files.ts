import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The files below `dir` (an absolute path), recursively, whose name `keep` accepts; none when `dir` does not exist. */
export function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return filesUnder(p, keep);
    return keep(e) ? [p] : [];
  });
}
