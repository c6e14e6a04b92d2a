import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lastLines } from "../src/screen-text.js";
import { formatHeartbeat, isoSeconds, removeHeartbeat, writeHeartbeat, type HeartbeatStatus } from "../src/heartbeat.js";
import { backoffMs, decideRestart, HEALTHY_RUN_MS } from "../src/restart-policy.js";

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

describe("removeHeartbeat (RemoveAgent)", () => {
  it("removes only a file this service wrote for that agent", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skein-hb-"));
    try {
      const ours = join(dir, "a.hb");
      writeFileSync(ours, formatHeartbeat({ at: new Date(), pid: 1, status: "stopped", runtime: "", agent: "a", paneId: "%1", socket: "s", restarts: 0 }));
      const foreign = join(dir, "b.hb");
      writeFileSync(foreign, "ts=2026-11-21T05:34:04Z\npid=1\nstatus=ok\nagent=b\n");
      const otherAgent = join(dir, "c.hb");
      writeFileSync(otherAgent, formatHeartbeat({ at: new Date(), pid: 1, status: "ok", runtime: "", agent: "someone-else", paneId: "%1", socket: "s", restarts: 0 }));
      await removeHeartbeat(ours, "a");
      await removeHeartbeat(foreign, "b");
      await removeHeartbeat(otherAgent, "c");
      await removeHeartbeat(join(dir, "missing.hb"), "missing");
      expect([existsSync(ours), existsSync(foreign), existsSync(otherAgent)]).toEqual([false, true, true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("lastLines (CaptureOutput)", () => {
  it("drops the blank rows of the visible screen and keeps the last N lines of output", () => {
    expect(lastLines("one\ntwo\nthree\n\n\n\n", 2)).toBe("two\nthree\n");
    expect(lastLines("one\n   \n\n", 5)).toBe("one\n");
    expect(lastLines("\n\n\n", 3)).toBe("");
    expect(lastLines("a\n\nb\n", 3)).toBe("a\n\nb\n");
  });

  it("drops the blank screen rows tmux leaves above its 'Pane is dead' line", () => {
    const dead = `hello\nworld\n${"\n".repeat(20)}Pane is dead (status 3, Sat Nov 28 05:29:42 2026)\n`;
    expect(lastLines(dead, 5)).toBe("hello\nworld\nPane is dead (status 3, Sat Nov 28 05:29:42 2026)\n");
    expect(lastLines(dead, 1)).toBe("Pane is dead (status 3, Sat Nov 28 05:29:42 2026)\n");
    expect(lastLines(`\n\nPane is dead (signal 9, x)\n\n`, 3)).toBe("Pane is dead (signal 9, x)\n");
  });
});

describe("writeHeartbeat", () => {
  it("keeps one temp file (the inode the next beat overwrites) while beating, none after a final beat or RemoveAgent", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skein-hb-"));
    try {
      const file = join(dir, "sub", "a.hb");
      const beat = (status: HeartbeatStatus, agent = "a") => writeHeartbeat(join(dir, "sub", `${agent}.hb`), { at: new Date(), pid: 7, status, runtime: "pi", agent, paneId: "%1", socket: "s", restarts: 0 });
      // A dead writer's temp file (no pid reaches 999999999) is swept when the directory is first written.
      mkdirSync(join(dir, "sub"));
      writeFileSync(join(dir, "sub", ".skein-tmp-a.hb-999999999.0"), "left by a crash");
      beat("ok");
      beat("ok");
      expect(readFileSync(file, "utf8").split("\n").slice(0, 3)).toEqual([expect.stringMatching(/^ts=/), "pid=7", "status=ok"]);
      expect(readdirSync(join(dir, "sub")).sort()).toEqual([`.skein-tmp-a.hb-${process.pid}.0`, "a.hb"]);
      beat("stopped");
      expect(readdirSync(join(dir, "sub"))).toEqual(["a.hb"]);
      expect(readFileSync(file, "utf8")).toContain("status=stopped\n");
      beat("ok", "b");
      beat("ok", "b");
      await removeHeartbeat(join(dir, "sub", "b.hb"), "b");
      expect(readdirSync(join(dir, "sub"))).toEqual(["a.hb"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
