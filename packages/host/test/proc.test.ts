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

// Moved here from the fleet service's tests: they test only this package.
// (Imports are hoisted; they stand here so the lines above stay untouched.)
import { readFileSync } from "node:fs";
import { isSameProcess, parseProcStat, readProcStat } from "../src/proc.js";

describe("isSameProcess (pid-reuse guard)", () => {
  it("accepts the process that started at the recorded time", async () => {
    const me = await readProcStat(process.pid);
    expect(me).toBeDefined();
    expect(isSameProcess(me, me!.startTicks)).toBe(true);
  });

  it("rejects a pid whose start time differs: the pid was reused by another process", async () => {
    const me = await readProcStat(process.pid);
    expect(isSameProcess(me, me!.startTicks - 1)).toBe(false);
    expect(isSameProcess(me, -1)).toBe(false);
  });

  it("rejects zombies and missing pids", async () => {
    const zombie = parseProcStat("42 (x) Z 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0");
    expect(zombie?.startTicks).toBe(777);
    expect(isSameProcess(zombie, 777)).toBe(false);
    expect(await readProcStat(2 ** 22 + 1)).toBeUndefined();
  });
});

describe("parseProcStat", () => {
  it("parses names with spaces and parentheses", () => {
    const raw = readFileSync(`/proc/${process.pid}/stat`, "utf8");
    const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    const s = parseProcStat(`123 (we(i)rd ) name) ${fields.join(" ")}`);
    expect(s).toMatchObject({ pid: 123, state: fields[0], pgrp: Number(fields[2]), session: Number(fields[3]), startTicks: Number(fields[19]) });
  });
});
