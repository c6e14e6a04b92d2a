import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { KeyedLock } from "../src/keyed-lock.js";
import { writeAtomic } from "../src/atomic-write.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-host-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("replaces the content with mode 0600 and leaves no temp file", async () => {
  const f = join(dir, "a.json");
  await writeAtomic(f, "one");
  await writeAtomic(f, async (fh) => void (await fh.writeFile("two")));
  expect(await readFile(f, "utf8")).toBe("two");
  expect((await stat(f)).mode & 0o777).toBe(0o600);
  expect(await readdir(dir)).toEqual(["a.json"]);
});

it("keeps the old content and removes the temp file when writing fails", async () => {
  const f = join(dir, "a.json");
  await writeAtomic(f, "old", { mode: 0o644 });
  await expect(writeAtomic(f, async () => Promise.reject(new Error("disk full")))).rejects.toThrow("disk full");
  expect(await readFile(f, "utf8")).toBe("old");
  expect(await readdir(dir)).toEqual(["a.json"]);
});

it("runs tasks of one key in order and forgets idle keys", async () => {
  const lock = new KeyedLock();
  const order: string[] = [];
  const slow = lock.run("k", async () => {
    await new Promise((r) => setTimeout(r, 20));
    order.push("first");
  });
  const failing = lock.run("k", async () => {
    order.push("second");
    throw new Error("boom");
  });
  const third = lock.run("k", async () => order.push("third"));
  await slow;
  await expect(failing).rejects.toThrow("boom");
  await third;
  expect(order).toEqual(["first", "second", "third"]);
  await new Promise((r) => setTimeout(r, 0));
  expect((lock as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0);
});
