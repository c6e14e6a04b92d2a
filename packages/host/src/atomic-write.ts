import { randomBytes } from "node:crypto";
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Temp files start with this, so a start-up sweep can remove what a crash left. */
export const TEMP_PREFIX = ".skein-tmp-";

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0600: sessions, state and heartbeats are private). */
  readonly mode?: number;
}

/**
 * Replaces a file so that a crash at any instant leaves either the old or the
 * new content, never a mix: temp file in the same directory, fsync, rename.
 * `content` is the data, or a function writing it through the handle.
 */
export async function writeAtomic(path: string, content: string | Uint8Array | ((fh: FileHandle) => Promise<void>), opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", opts.mode ?? 0o600);
  try {
    if (typeof content === "function") await content(fh);
    else await fh.writeFile(content);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/**
 * Replaces a small file so that readers see the old or the new content, never
 * a mix (temp file in the same directory, then rename), synchronously and
 * without fsync: for files rewritten every few seconds (heartbeats), where a
 * write lost to a power cut is rewritten at the next interval and the cost of
 * a flush and of a thread-pool round trip per file would dominate. The temp
 * file is created exclusively, so a planted symlink is never followed.
 */
export function replaceFileSync(path: string, content: string, mode: number): void {
  // One writer per process and file at a time (the call is synchronous): the pid makes the name unique.
  const tmp = join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${process.pid}`);
  try {
    writeFileSync(tmp, content, { mode, flag: "wx" });
  } catch (err) {
    // Left by a crashed process that had our pid: ours to replace.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    unlinkSync(tmp);
    writeFileSync(tmp, content, { mode, flag: "wx" });
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
