import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

const madeDirs = new Set<string>();
let tmpCounter = 0;

/**
 * Replaces a file so that readers see either the old or the new content, never
 * a half-written one: temp file in the same directory, fsync, rename.
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  // Heartbeats rewrite the same files every second: create each directory once, not on every write.
  if (!madeDirs.has(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    madeDirs.add(dir);
  }
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++tmpCounter}.tmp`);
  let fh;
  try {
    fh = await open(tmp, "w", mode);
  } catch (err) {
    // The directory may have been removed since: forget it so the next write recreates it.
    madeDirs.delete(dir);
    throw err;
  }
  try {
    await fh.writeFile(content);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
