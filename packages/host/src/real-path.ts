import { lstatSync, readlinkSync } from "node:fs";
import { dirname, join } from "node:path";

/** Symlinks followed in one resolution before giving up (the kernel's ELOOP limit is 40). */
const MAX_LINKS = 40;

/**
 * The absolute path the kernel would reach for `path`, also when its tail does
 * not exist yet (a directory `mkdir -p` is about to create): every existing
 * symlink is followed and each `..` steps out of the directory actually
 * reached, not out of the name written. Throws on a symlink loop.
 */
export function resolveReal(path: string): string {
  let links = 0;
  // Not path.resolve(): it would take `link/..` away lexically, before the link is followed.
  const pending = (path.startsWith("/") ? path : `${process.cwd()}/${path}`).split("/").filter((c) => c !== "");
  let cur = "/";
  while (pending.length > 0) {
    const comp = pending.shift()!;
    if (comp === ".") continue;
    if (comp === "..") {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, comp);
    let isLink = false;
    try {
      isLink = lstatSync(next).isSymbolicLink();
    } catch {
      // Missing: everything below it is created later, as named.
    }
    if (!isLink) {
      cur = next;
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links in ${path}`);
    const target = readlinkSync(next);
    // The link's target replaces it; an absolute target starts again from /.
    pending.unshift(...target.split("/").filter((c) => c !== ""));
    if (target.startsWith("/")) cur = "/";
  }
  return cur;
}

/** `path` is `root` or lies below it (both already resolved). */
export function isWithin(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);
}
