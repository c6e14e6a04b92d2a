import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { acquireInstanceLock, InstanceLockedError } from "../src/instance-lock.js";

const dir = mkdtempSync(join(tmpdir(), "skein-lock-"));
const path = join(dir, "thing.lock");
afterEach(() => rmSync(path, { force: true }));

it("lets one owner in, refuses another while the owner lives, and releases", async () => {
  const release = await acquireInstanceLock(path, (pid) => `held by ${pid}`);
  await expect(acquireInstanceLock(path, (pid) => `held by ${pid}`)).rejects.toThrow(new InstanceLockedError(process.pid, `held by ${process.pid}`));
  await release();
  expect(existsSync(path)).toBe(false);
  const again = await acquireInstanceLock(path, () => "held");
  await again();
});

it("takes over a lock whose owner is gone or whose pid now runs another program", async () => {
  writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 99, startTicks: 5 }));
  await (await acquireInstanceLock(path, () => "held"))();
  writeFileSync(path, JSON.stringify({ pid: process.pid, startTicks: 1 }));
  await (await acquireInstanceLock(path, () => "held"))();
  writeFileSync(path, "not json");
  await (await acquireInstanceLock(path, () => "held"))();
  rmSync(dir, { recursive: true, force: true });
});
