import { randomBytes } from "node:crypto";
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

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
