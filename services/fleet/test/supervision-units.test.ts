import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { lastLines } from "../src/fleet.js";
import { formatHeartbeat, isoSeconds } from "../src/heartbeat.js";
import { isSameProcess, parseProcStat, readProcStat } from "@skein/host";
import { backoffMs, decideRestart, HEALTHY_RUN_MS } from "../src/restart-policy.js";

describe("liveness (pid-reuse guard)", () => {
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

  it("parses names with spaces and parentheses", () => {
    const raw = readFileSync(`/proc/${process.pid}/stat`, "utf8");
    const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    const s = parseProcStat(`123 (we(i)rd ) name) ${fields.join(" ")}`);
    expect(s).toMatchObject({ pid: 123, state: fields[0], pgrp: Number(fields[2]), session: Number(fields[3]), startTicks: Number(fields[19]) });
  });
});

describe("restart policy", () => {
  const base = { exitStatus: 1, ranMs: 5_000, consecutiveRestarts: 0, maxRestarts: 3 } as const;

  it("never restarts under never; on-failure only after a failure; always after any exit", () => {
    expect(decideRestart({ ...base, policy: "never" }).action).toBe("none");
    expect(decideRestart({ ...base, policy: "on-failure", exitStatus: 0 }).action).toBe("none");
    expect(decideRestart({ ...base, policy: "on-failure", exitStatus: undefined }).action).toBe("restart");
    expect(decideRestart({ ...base, policy: "always", exitStatus: 0 }).action).toBe("restart");
  });

  it("backs off 1 s doubling to 5 min", () => {
    expect([0, 1, 2, 3, 8, 9, 50].map((n) => backoffMs(n))).toEqual([1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
    expect(decideRestart({ ...base, policy: "always", consecutiveRestarts: 2 })).toEqual({ action: "restart", delayMs: 4000, consecutiveRestarts: 2 });
  });

  it("gives up after max_restarts in a row, but a 10 min run starts the count over", () => {
    expect(decideRestart({ ...base, policy: "always", consecutiveRestarts: 3 })).toEqual({ action: "give-up", consecutiveRestarts: 3 });
    expect(decideRestart({ ...base, policy: "always", consecutiveRestarts: 3, ranMs: HEALTHY_RUN_MS })).toEqual({ action: "restart", delayMs: 1000, consecutiveRestarts: 0 });
  });
});

describe("heartbeat format", () => {
  it("starts with ts, pid, status lines that fleet monitors parse", () => {
    const at = new Date("2026-11-21T05:34:04.567Z");
    const text = formatHeartbeat({ at, pid: 42, status: "exited", runtime: "pi", agent: "a-1", exitCode: 3, paneId: "%1", socket: "s", restarts: 0 });
    const lines = text.split("\n");
    expect(lines.slice(0, 6)).toEqual(["ts=2026-11-21T05:34:04Z", "pid=42", "status=exited", "runtime=pi", "agent=a-1", "exit_code=3"]);
    expect(isoSeconds(at)).toBe("2026-11-21T05:34:04Z");
    expect(formatHeartbeat({ at, pid: 1, status: "ok", runtime: "", agent: "x", paneId: "%1", socket: "s", restarts: 0 })).not.toContain("exit_code");
  });
});

describe("lastLines (CaptureOutput)", () => {
  it("drops the blank rows of the visible screen and keeps the last N lines of output", () => {
    expect(lastLines("one\ntwo\nthree\n\n\n\n", 2)).toBe("two\nthree\n");
    expect(lastLines("one\n   \n\n", 5)).toBe("one\n");
    expect(lastLines("\n\n\n", 3)).toBe("");
    expect(lastLines("a\n\nb\n", 3)).toBe("a\n\nb\n");
  });
});
