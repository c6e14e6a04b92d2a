import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ActivityTracker } from "../src/activity-tracker.js";
import { newAgent, type Agent } from "../src/agent.js";
import { formatHeartbeat } from "../src/heartbeat.js";
import { PromptTable } from "../src/prompts.js";
import { fleetSignalSocketPath as signalSocketPath } from "@skein/host";
import { notifiable, signBody, webhookBody } from "../src/webhook.js";

describe("prompt table", () => {
  const table = PromptTable.load(undefined);

  it("recognises each runtime's prompt in the last lines, and a yes/no question for any runtime", () => {
    expect(table.match("claude", "Edit file\n Do you want to make this edit to a.ts?\n ❯ 1. Yes\n   2. No\n")?.text).toContain("Do you want to make this edit");
    expect(table.match("codex", "$ rm -rf build\nAllow command? [y/N]\n")).toBeDefined();
    expect(table.match("goose", "Goose would like to call the above tool. Allow? (y/n)\n")).toBeDefined();
    expect(table.match("pi", "Overwrite? (y/n) ")).toEqual({ text: "Overwrite? (y/n)", onLastLine: true });
    expect(table.match("pi", "compiling…\nall good\n")).toBeUndefined();
    // A prompt scrolled past the last lines no longer counts.
    expect(table.match("pi", `Do you want to proceed? (y/n) y\n${"line\n".repeat(10)}`)).toBeUndefined();
    expect(table.match("pi", "Do you want to proceed? (y/n) y\nworking\n")).toEqual({ text: "Do you want to proceed? (y/n) y\nworking", onLastLine: false });
    // Answered in place: "(y/n) y" is no longer a question.
    expect(table.match("pi", "Overwrite? (y/n) y\n")).toBeUndefined();
  });

  it("takes the operator's additions from SKEIN_FLEET_PROMPTS; a bad file is a one-line setting error", () => {
    const dir = mkdtempSync(join(tmpdir(), "skein-prompts-"));
    try {
      const file = join(dir, "prompts.json");
      writeFileSync(file, JSON.stringify({ aider: ["^Add .* to the chat\\?"] }));
      expect(PromptTable.load(file).match("aider", "Add src/x.py to the chat? (Y)es/(N)o")).toBeDefined();
      expect(PromptTable.load(file).match("claude", "Do you want to proceed?")).toBeDefined();
      writeFileSync(file, JSON.stringify({ aider: ["(unclosed"] }));
      expect(() => PromptTable.load(file)).toThrow(/SKEIN_FLEET_PROMPTS=.*not a regular expression/);
      writeFileSync(file, "[1]");
      expect(() => PromptTable.load(file)).toThrow(/must hold a JSON object/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A tracker over one agent and a scripted tmux: each check sees `screen` with output time `activity`. */
function scripted(idleAfterMs = 5_000) {
  const a: Agent = newAgent({ name: "a", workdir: "/", command: "x", runtime: "pi", runtimeBinDirs: [], env: {}, heartbeatIntervalSeconds: 1, heartbeatFile: "/dev/null", restartPolicy: "never", maxRestarts: 1 });
  const pane = { screen: "", activity: 0 };
  const reported: string[] = [];
  let captures = 0;
  const tracker = new ActivityTracker({
    tmux: {
      activityTimes: async () => new Map([["a", { activity: pane.activity, dead: false }]]),
      screens: async () => {
        captures++;
        return new Map([["a", pane.screen]]);
      },
    },
    prompts: PromptTable.load(undefined),
    idleAfterMs,
    log: pino({ level: "silent" }),
    agents: () => [a],
    changed: (x) => reported.push(x.activity),
  });
  return { a, pane, reported, tracker, captures: () => captures };
}

describe("activity tracker", () => {
  it("reports a state only after two checks; a spinner is working, a still screen idle, a prompt waiting", async () => {
    const s = scripted();
    let t = 1_000_000;
    const step = async (screen: string) => {
      t += 1000;
      if (screen !== s.pane.screen) s.pane.activity = Math.floor(t / 1000);
      s.pane.screen = screen;
      await s.tracker.check(t);
    };
    await step("| working");
    expect(s.reported).toEqual([]);
    await step("/ working");
    expect(s.reported).toEqual(["working"]);
    await step("- working");
    await step("Proceed? (y/n) ");
    expect(s.a.activity).toBe("working");
    await step("Proceed? (y/n) ");
    expect(s.reported).toEqual(["working", "waiting"]);
    expect(s.a.waitingFor).toBe("Proceed? (y/n)");
    // Answered: working at once, then still screen → idle after idleAfterMs, reported once.
    s.tracker.answered(s.a, t);
    await step("Proceed? (y/n) y\ndone");
    for (let i = 0; i < 8; i++) await step("Proceed? (y/n) y\ndone");
    expect(s.reported).toEqual(["working", "waiting", "working", "idle"]);
    expect(s.a.activitySince.getTime()).toBe(t - 8000);
  });

  it("captures only panes whose output time moved (or that sit on a prompt)", async () => {
    const s = scripted();
    s.pane.screen = "quiet";
    s.pane.activity = 10;
    for (let i = 0; i < 5; i++) await s.tracker.check(20_000 + i * 1000);
    // First look, then the second in which output happened: nothing after.
    expect(s.captures()).toBe(1);
  });

  it("the agent's own signal is reported at once and holds until its screen moves on", async () => {
    const s = scripted();
    s.pane.screen = "x";
    await s.tracker.check(1000);
    s.tracker.signal(s.a, "waiting", "needs a key", 1500);
    expect(s.reported).toEqual(["waiting"]);
    expect(s.a.waitingFor).toBe("needs a key");
    for (let i = 0; i < 3; i++) await s.tracker.check(2000 + i * 1000);
    expect(s.a.activity).toBe("waiting");
    s.pane.screen = "y";
    s.pane.activity = 5;
    await s.tracker.check(5000);
    await s.tracker.check(6000);
    expect(s.reported).toEqual(["waiting", "working"]);
  });
});

describe("heartbeat and webhook formats", () => {
  it("the heartbeat gains activity= after the fixed lines, before writer=", () => {
    const text = formatHeartbeat({ at: new Date(0), pid: 1, status: "ok", runtime: "pi", agent: "a", paneId: "%1", socket: "s", restarts: 0, activity: "waiting" });
    expect(text.split("\n").slice(0, 3)).toEqual(["ts=1970-01-01T00:00:00Z", "pid=1", "status=ok"]);
    expect(text).toContain("\nactivity=waiting\nwriter=skein-fleet\n");
  });

  it("notifies waiting, idle, exited and gave-up, with the documented body and an HMAC signature", () => {
    const a = newAgent({ name: "a", workdir: "/", command: "x", runtime: "pi", runtimeBinDirs: [], env: {}, heartbeatIntervalSeconds: 1, heartbeatFile: "/x", restartPolicy: "never", maxRestarts: 1 });
    Object.assign(a, { activity: "waiting", waitingFor: "Proceed?", activitySince: new Date(0) });
    const snap = { ...a, tmuxSocket: "s" };
    expect(notifiable({ type: "activity", agent: snap, at: new Date(), message: "" })).toBe(true);
    expect(notifiable({ type: "activity", agent: { ...snap, activity: "working" }, at: new Date(), message: "" })).toBe(false);
    expect(notifiable({ type: "started", agent: snap, at: new Date(), message: "" })).toBe(false);
    expect(webhookBody(snap, "h")).toEqual({ agent: "a", host: "h", activity: "waiting", since: "1970-01-01T00:00:00.000Z", waiting_for: "Proceed?", state: "running", exit_status: null });
    // What a receiver computes to check it (RFC 4231-style HMAC over the raw body).
    expect(signBody('{"agent":"a"}', "k")).toBe(`sha256=${createHmac("sha256", "k").update('{"agent":"a"}').digest("hex")}`);
  });
});

describe("signal socket", () => {
  it("stays within a Unix socket path's 107 bytes for the longest tmux socket name, one path per name", () => {
    const long = signalSocketPath("s".repeat(100));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(107);
    expect(long).not.toBe(signalSocketPath(`${"s".repeat(99)}t`));
    expect(signalSocketPath("skein-fleet").endsWith("/skein-fleet.skein-signal")).toBe(true);
  });
});
