import { mkdirSync, statSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * `mkdir -p` that always ends. Node's `mkdir(path, { recursive: true })`
 * treats every ENOENT as "a parent is missing", makes the parent and tries
 * again: where the parent exists but cannot hold the child (under /proc, a
 * dangling symlink) it spins at 100 % CPU forever, and the promise never
 * settles (the sync form freezes the process). Here a child that is still
 * not found once its parent exists is an error, as `mkdir -p` reports it.
 * Directories created get `mode`.
 */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path, { mode });
    return;
  } catch (err) {
    if (await existingDirectory(path, err)) return;
    const parent = dirname(path);
    if (code(err) !== "ENOENT" || parent === path) throw err;
  }
  await makeDirectory(dirname(path), mode);
  try {
    await mkdir(path, { mode });
  } catch (err) {
    if (!(await existingDirectory(path, err))) throw err;
  }
}

/** makeDirectory's synchronous twin, for the few callers that must not yield. */
export function makeDirectorySync(path: string, mode: number): void {
  try {
    mkdirSync(path, { mode });
    return;
  } catch (err) {
    if (existingDirectorySync(path, err)) return;
    const parent = dirname(path);
    if (code(err) !== "ENOENT" || parent === path) throw err;
  }
  makeDirectorySync(dirname(path), mode);
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    if (!existingDirectorySync(path, err)) throw err;
  }
}

function code(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

/** EEXIST for a directory (or a link to one) is success; for anything else it stays an error. */
async function existingDirectory(path: string, err: unknown): Promise<boolean> {
  return code(err) === "EEXIST" && (await stat(path).then((s) => s.isDirectory(), () => false));
}

function existingDirectorySync(path: string, err: unknown): boolean {
  if (code(err) !== "EEXIST") return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
