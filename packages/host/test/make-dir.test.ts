import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeDirectory, makeDirectorySync } from "../src/make-dir.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "skein-make-dir-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const forms = [
  ["makeDirectory", (p: string, mode: number) => makeDirectory(p, mode)],
  ["makeDirectorySync", async (p: string, mode: number) => makeDirectorySync(p, mode)],
] as const;

describe.each(forms)("%s", (_name, make) => {
  it("creates every missing level with the mode, and accepts one that exists", async () => {
    const deep = join(root, "a", "b", "c");
    await make(deep, 0o700);
    for (const p of [join(root, "a"), join(root, "a", "b"), deep]) expect(statSync(p).mode & 0o777).toBe(0o700);
    await make(deep, 0o700);
    await make(root, 0o700);
  });

  it("refuses a path whose level is a file (ENOTDIR or EEXIST), creating nothing", async () => {
    writeFileSync(join(root, "file"), "");
    await expect(make(join(root, "file"), 0o700)).rejects.toMatchObject({ code: "EEXIST" });
    await expect(make(join(root, "file", "below"), 0o700)).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  // Node's own recursive mkdir never returns for these two (it spins at 100 % CPU).
  it("ends with ENOENT under /proc, where a child cannot be made though its parent exists", async () => {
    await expect(make("/proc/skein-no-such-dir/state", 0o700)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("ends below a dangling symlink: the link is in the way (EEXIST), as mkdir -p says", async () => {
    symlinkSync(join(root, "gone"), join(root, "dangling"));
    await expect(make(join(root, "dangling", "state"), 0o700)).rejects.toMatchObject({ code: "EEXIST", path: join(root, "dangling") });
  });
});
