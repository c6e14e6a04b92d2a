import { closeSync, constants, fstatSync, ftruncateSync, linkSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { TEMP_PREFIX } from "./atomic-write.js";

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/** `<TEMP_PREFIX><file name>-<pid>.<0|1>`, or `-<pid>` alone as the single temp name of earlier versions. */
const TEMP_NAME = new RegExp(`^${TEMP_PREFIX.replaceAll(".", "\\.")}.+-(\\d+)(?:\\.[01])?$`);
/** A reused temp inode must be ours: the file it becomes keeps its owner. */
const MY_UID = process.getuid?.();

/**
 * Replaces small files that are rewritten every few seconds (heartbeats) so
 * that readers see the old or the new content, never a mix: a temp file in the
 * same directory, then rename; synchronous and without fsync (a write lost to
 * a power cut is rewritten at the next interval, and a flush or a thread-pool
 * round trip per file would cost more than the write).
 *
 * A fresh temp file per replace is what made this expensive on a journaling
 * file system: ext4 allocates an inode for it, starts writing its block out
 * at the rename (auto_da_alloc, for renames over an existing file), and
 * truncates and frees the replaced inode. So each file has two temp names
 * used in turn: just before the rename the current file is hard-linked to the
 * other name, and the inode it replaces lives on as the next temp file, which
 * is overwritten in place (its block is allocated already). Per replace: no
 * inode allocated or freed, no writeback started; a link and a rename.
 *
 * What a reader sees: the rename is atomic, and an inode is written again only
 * when it stopped being the file at least `reuseAfterMs` before (0.9 s: beats
 * 1 s apart, less the jitter of where in its timer tick a beat falls); faster
 * replaces take a fresh inode. So a reader never sees a mix unless it stalls
 * that long between opening the file and reading it (and then reads a beat
 * that was already replaced). Temp names carry the pid: two processes never
 * share one.
 */
export class FileReplacer {
  /** Per target path: its two temp names, which to write next, and when the inode kept there stopped being the file. */
  private readonly spares = new Map<string, { names: readonly [string, string]; turn: 0 | 1; retiredAt: number }>();

  constructor(private readonly reuseAfterMs = 900) {}

  replace(path: string, content: string, mode: number): void {
    const now = Date.now();
    const spare = this.spares.get(path);
    const names = spare?.names ?? [tempName(path, 0), tempName(path, 1)];
    const t = spare?.turn ?? 0;
    const tmp = names[t];
    const { fd, size } = openTemp(tmp, mode, spare !== undefined && now - spare.retiredAt >= this.reuseAfterMs);
    try {
      const data = Buffer.from(content);
      writeWhole(fd, data);
      // Cut what is left of a longer old content; truncating to zero before the write instead would free the block (and make ext4 write it out at close).
      if (size > data.length) ftruncateSync(fd, data.length);
    } catch (err) {
      closeSync(fd);
      unlinkQuietly(tmp);
      throw err;
    }
    closeSync(fd);
    // Keeps the inode about to be replaced as the next temp file. When this
    // fails (no file yet, the name taken, no hard links on this file system)
    // the old inode is freed as before and the next replace creates its temp file.
    try {
      linkSync(path, names[t === 0 ? 1 : 0]);
    } catch {
      // see above
    }
    try {
      renameSync(tmp, path);
    } catch (err) {
      unlinkQuietly(tmp);
      throw err;
    }
    this.spares.set(path, { names, turn: t === 0 ? 1 : 0, retiredAt: now });
  }

  /** Removes the path's temp files: it will not be replaced again soon (its writer stopped, or the file is removed). */
  forget(path: string): void {
    this.spares.delete(path);
    unlinkQuietly(tempName(path, 0));
    unlinkQuietly(tempName(path, 1));
  }

  /** Removes temp files in `dir` left by processes that no longer run (a crash, or a service restart: temp names carry the writer's pid). */
  static sweep(dir: string): void {
    for (const name of readdirSync(dir)) {
      const pid = TEMP_NAME.exec(name)?.[1];
      if (pid !== undefined && !isRunning(Number(pid))) unlinkQuietly(join(dir, name));
    }
  }
}

function tempName(path: string, t: 0 | 1): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${process.pid}.${t}`);
}

/**
 * Opens the temp file to overwrite, or creates it. An existing one is reused
 * only when `reuse` says its inode may be and it is a plain file of ours with no
 * other name (never a symlink's target, a FIFO, a file hard-linked elsewhere,
 * or another user's file that replaced ours); anything else at that name is
 * removed and the file created exclusively.
 */
function openTemp(tmp: string, mode: number, reuse: boolean): { fd: number; size: number } {
  if (reuse) {
    try {
      const fd = openSync(tmp, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
      const st = fstatSync(fd);
      if (st.isFile() && st.nlink === 1 && st.uid === (MY_UID ?? st.uid)) return { fd, size: st.size };
      closeSync(fd);
    } catch {
      // missing, or not ours to write: created afresh below
    }
  }
  unlinkQuietly(tmp);
  return { fd: openSync(tmp, O_WRONLY | O_CREAT | O_EXCL, mode), size: 0 };
}

function writeWhole(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, off);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
