import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isWithin, resolveReal } from "../src/real-path.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "skein-real-path-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it("follows symlinks and takes .. from the directory actually reached, also below missing parts", () => {
  mkdirSync(join(dir, "a", "b"), { recursive: true });
  mkdirSync(join(dir, "elsewhere", "deep"), { recursive: true });
  symlinkSync(join(dir, "elsewhere", "deep"), join(dir, "a", "link"));
  symlinkSync("../a", join(dir, "elsewhere", "rel"));
  // Written as strings: path.join would take the ".." away lexically.
  expect(resolveReal(`${dir}/a/b/../c`)).toBe(join(dir, "a", "c"));
  // link/.. is the parent of the link's target, not dir/a.
  expect(resolveReal(`${dir}/a/link/../x`)).toBe(join(dir, "elsewhere", "x"));
  expect(resolveReal(`${dir}/elsewhere/rel/b/new/../n2`)).toBe(join(dir, "a", "b", "n2"));
  expect(resolveReal(`${dir}/missing/../a`)).toBe(join(dir, "a"));
});

it("refuses a symlink loop", () => {
  symlinkSync(join(dir, "loop2"), join(dir, "loop1"));
  symlinkSync(join(dir, "loop1"), join(dir, "loop2"));
  expect(() => resolveReal(join(dir, "loop1", "x"))).toThrow(/symbolic links/);
});

it("isWithin matches whole path segments", () => {
  expect(isWithin("/a/b", "/a")).toBe(true);
  expect(isWithin("/a", "/a")).toBe(true);
  expect(isWithin("/ab", "/a")).toBe(false);
  expect(isWithin("/x", "/")).toBe(true);
});
