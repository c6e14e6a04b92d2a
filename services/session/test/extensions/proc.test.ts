import { spawn } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { procStat } from "../../src/extensions/proc.js";
import { StderrTail } from "../../src/extensions/stderr-tail.js";
import { alive } from "./helpers.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe("procStat", () => {
  it("reads pgrp and start time even when the command name holds spaces and parentheses", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skein-proc-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const odd = join(dir, "x) (y z");
    await symlink("/bin/sleep", odd);
    const child = spawn(odd, ["30"], { detached: true, stdio: "ignore" });
    cleanups.push(() => alive(child.pid!) && process.kill(child.pid!, "SIGKILL"));
    await new Promise((r) => child.once("spawn", r));
    const s = procStat(child.pid!)!;
    expect(s.pgrp).toBe(child.pid);
    expect(s.startTime).toMatch(/^\d+$/);
    expect(Number(s.startTime)).toBeGreaterThan(Number(procStat(process.pid)!.startTime) - 1);
    expect(procStat(2 ** 22 + 12345)).toBeUndefined();
  });
});

describe("StderrTail", () => {
  it("keeps at most maxBytes, newest last", () => {
    const tail = new StderrTail(32);
    for (let i = 0; i < 100; i++) tail.push(Buffer.from(`line ${i}\n`));
    expect(tail.lastLines(3)).toEqual(["line 97", "line 98", "line 99"]);
    expect(Buffer.byteLength(tail.lastLines(100).join("\n"))).toBeLessThanOrEqual(32);
    tail.push(Buffer.alloc(1000, "a"));
    expect(tail.lastLines()).toEqual(["a".repeat(32)]);
  });
});
