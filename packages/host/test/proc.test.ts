import { spawn } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { groupMembers, liveStartTicks, readProcStatSync, signalGroup } from "../src/proc.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe("readProcStatSync", () => {
  it("reads pgrp and start time even when the command name holds spaces and parentheses", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skein-proc-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const odd = join(dir, "x) (y z");
    await symlink("/bin/sleep", odd);
    const child = spawn(odd, ["30"], { detached: true, stdio: "ignore" });
    cleanups.push(() => liveStartTicks(child.pid!) !== undefined && process.kill(child.pid!, "SIGKILL"));
    await new Promise((r) => child.once("spawn", r));
    const s = readProcStatSync(child.pid!)!;
    expect(s.pgrp).toBe(child.pid);
    expect(Number.isInteger(s.startTicks)).toBe(true);
    expect(s.startTicks).toBeGreaterThanOrEqual(readProcStatSync(process.pid)!.startTicks);
    expect(readProcStatSync(2 ** 22 + 12345)).toBeUndefined();
  });
});

describe("signalGroup", () => {
  it("ends a whole group and never signals groups 0 or 1", async () => {
    const child = spawn("sh", ["-c", "sleep 30 & sleep 30"], { detached: true, stdio: "ignore" });
    cleanups.push(() => signalGroup(child.pid!, "SIGKILL"));
    await new Promise((r) => child.once("spawn", r));
    await new Promise((r) => setTimeout(r, 100));
    expect(groupMembers(child.pid!).length).toBe(3);
    expect(signalGroup(0, 0)).toBe(false);
    expect(signalGroup(1, 0)).toBe(false);
    expect(signalGroup(child.pid!, "SIGKILL")).toBe(true);
    await new Promise((r) => child.once("exit", r));
    await new Promise((r) => setTimeout(r, 50));
    expect(groupMembers(child.pid!)).toEqual([]);
  });
});
