import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A small tmpfs for full-disk and read-only faults: real ENOSPC and EROFS from
 * the kernel. Mounting needs root (and CAP_SYS_ADMIN); `tmpfsUnavailable()`
 * says why not, for a one-line skip. Every mount is unmounted by unmount() or,
 * should a test worker die first, at its exit.
 */
export interface Tmpfs {
  readonly dir: string;
  /** Writes a filler file until the file system is full; returns its path. */
  fill(): string;
  /** Removes the filler: the space is back. */
  free(): void;
  /** Remounts read-only (EROFS for every write) or read-write again. */
  readOnly(on: boolean): void;
  unmount(): void;
}

const mounted = new Set<string>();
process.on("exit", () => {
  for (const dir of mounted) unmountQuietly(dir);
});

let probed: string | undefined | null = null;

/** Why a tmpfs cannot be mounted here (undefined when it can): "needs root", or mount's own complaint. */
export function tmpfsUnavailable(): string | undefined {
  if (probed !== null) return probed;
  if (process.getuid?.() !== 0) return (probed = "mounting a tmpfs needs root");
  try {
    const t = mountTmpfs(64 * 1024);
    t.unmount();
    return (probed = undefined);
  } catch (err) {
    return (probed = `cannot mount a tmpfs: ${(err as Error).message.split("\n")[0]}`);
  }
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const base = mkdtempSync(join(tmpdir(), "skein-tmpfs-"));
  const dir = join(base, "fs");
  mkdirSync(dir);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", dir], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw new Error(String((err as { stderr?: Buffer }).stderr ?? err).trim());
  }
  mounted.add(dir);
  const filler = join(dir, ".filler");
  return {
    dir,
    fill() {
      const fd = openSync(filler, "a");
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
        // The last pages: smaller writes until not one byte fits.
        for (let size = 32 * 1024; size >= 1; size = Math.floor(size / 2)) {
          try {
            for (;;) writeSync(fd, chunk, 0, size);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
          }
        }
      } finally {
        closeSync(fd);
      }
      return filler;
    },
    free() {
      rmSync(filler, { force: true });
    },
    readOnly(on) {
      execFileSync("mount", ["-o", `remount,${on ? "ro" : "rw"}`, dir], { stdio: ["ignore", "ignore", "pipe"] });
    },
    unmount() {
      if (!mounted.delete(dir)) return;
      unmountQuietly(dir);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

function unmountQuietly(dir: string): void {
  try {
    execFileSync("umount", ["-l", dir], { stdio: "ignore" });
  } catch {
    // already gone
  }
}
