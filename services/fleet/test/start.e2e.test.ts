import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { call, rejection } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, TMUX, waitFor } from "./harness.js";

const { AGENT_STATE_RUNNING } = fleet.AgentState;

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

describe("StartAgent", () => {
  it("starts one session named after the agent, in the workdir, with exec (pane pid is the command)", async () => {
    h = await new FleetHarness().start();
    const res = await h.startAgent({ name: "agent-1", command: "sleep 300" });
    expect(res.alreadyRunning).toBe(false);
    const a = res.agent!;
    expect(a).toMatchObject({ name: "agent-1", state: AGENT_STATE_RUNNING, tmuxSocket: h.socket, workdir: h.work });
    expect(a.paneId).toMatch(/^%\d+$/);
    expect(h.sessions()).toEqual(["agent-1"]);
    expect(h.tmux("display-message", "-p", "-t", "=agent-1:", "#{pane_current_path}\t#{pane_pid}").trim()).toBe(`${h.work}\t${a.panePid}`);
    // exec: the shell that ran the launch line became the command itself.
    expect(readFileSync(`/proc/${a.panePid}/cmdline`, "utf8").split("\0").slice(0, 2)).toEqual(["sleep", "300"]);
    expect(readlinkSync(`/proc/${a.panePid}/cwd`)).toBe(h.work);
  });

  it("is idempotent: a second start reports already_running and adds no session", async () => {
    h = await new FleetHarness().start();
    const first = await h.startAgent({ name: "a", command: "sleep 300" });
    // A name that the first one prefixes must not be taken for it (exact-name targets).
    const second = await h.startAgent({ name: "a", command: "something else" });
    expect(second.alreadyRunning).toBe(true);
    expect(second.agent!.panePid).toBe(first.agent!.panePid);
    const longer = await h.startAgent({ name: "a-10", command: "sleep 300" });
    expect(longer.alreadyRunning).toBe(false);
    const again = await h.startAgent({ name: "a", command: "sleep 300" });
    expect(again.alreadyRunning).toBe(true);
    expect(h.sessions()).toEqual(["a", "a-10"]);
  });

  it("forwards the command's flags intact", async () => {
    h = await new FleetHarness().start();
    const script = join(h.work, "args.sh");
    writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$@" > ${h.work}/args.txt\nexec sleep 300\n`);
    chmodSync(script, 0o755);
    await h.startAgent({ name: "flags", command: `./args.sh yolo pi --model openai-codex/gpt-5.5:high -x "two words"` });
    const args = await waitFor("args.txt", () => existsSync(join(h.work, "args.txt")) && readFileSync(join(h.work, "args.txt"), "utf8"));
    expect(args).toBe("yolo\npi\n--model\nopenai-codex/gpt-5.5:high\n-x\ntwo words\n");
  });

  it("bakes the bin dirs into PATH even when the service's own PATH has them", async () => {
    h = new FleetHarness();
    const fakeBin = join(h.dir, "fakebin");
    const reqBin = join(h.dir, "req-bin");
    const cfgBin = join(h.dir, "cfg-bin");
    for (const d of [fakeBin, reqBin, cfgBin]) mkdirSync(d);
    const argvLog = join(h.dir, "tmux-argv.log");
    // A tmux earlier on PATH that records its argv (NUL-separated, one call per line) and runs the real one.
    writeFileSync(join(fakeBin, "tmux"), `#!/bin/sh\nprintf '%s\\0' "$@" >> '${argvLog}'\necho >> '${argvLog}'\nexec ${TMUX} "$@"\n`);
    chmodSync(join(fakeBin, "tmux"), 0o755);
    // Both bin dirs are already on the service's PATH: they must still be written into the pane's.
    Object.assign(h.extraEnv, { PATH: `${fakeBin}:${reqBin}:${cfgBin}:${process.env.PATH}`, SKEIN_RUNTIME_BIN: cfgBin, HOME: h.dir });
    await h.start();
    const res = await h.startAgent({
      name: "path",
      command: `sh -c 'echo "$PATH" > path.txt; echo "$GREETING" > env.txt; exec sleep 300'`,
      runtimeBinDirs: [reqBin, join(h.dir, "does-not-exist")],
      env: { GREETING: "it's $(not run)" },
    });
    expect(res.agent!.runtimeBinDirs).toEqual([reqBin, join(h.dir, "does-not-exist")]);
    const calls = readFileSync(argvLog, "utf8").split("\n").filter(Boolean).map((l) => l.split("\0").slice(0, -1));
    const newSession = calls.find((c) => c.includes("new-session"))!;
    expect(newSession.slice(0, 3)).toEqual(["-L", h.socket, "new-session"]);
    // skein-fleet-signal's directory after the requested ones, and after the request's env the agent's name, secret and signal socket.
    const signalBin = join(h.stateDir, `fleet-${h.socket}-bin`);
    const launch = newSession.find((a) => a.startsWith("export PATH="));
    expect(launch).toMatch(
      new RegExp(
        `^${escapeRegExp(`export PATH='${reqBin}':'${cfgBin}':'${signalBin}':"$PATH"; export GREETING='it'\\''s $(not run)'; export SKEIN_FLEET_AGENT='path'; export SKEIN_FLEET_SIGNAL_SECRET='`)}[A-Za-z0-9_-]{32}'; export SKEIN_FLEET_SIGNAL_SOCKET='[^']+'; ${escapeRegExp(`exec sh -c 'echo "$PATH" > path.txt; echo "$GREETING" > env.txt; exec sleep 300'`)}$`,
      ),
    );
    // The shell creates each file before echo writes it: wait for the whole line, not for the file.
    const line = (file: string) =>
      waitFor(file, () => {
        const text = existsSync(join(h.work, file)) && readFileSync(join(h.work, file), "utf8");
        return text && text.endsWith("\n") ? text : false;
      });
    expect((await line("path.txt")).startsWith(`${reqBin}:${cfgBin}:${signalBin}:`)).toBe(true);
    expect(await line("env.txt")).toBe("it's $(not run)\n");
  });

  it("runs nothing extra from metacharacters in workdir, env or command", async () => {
    h = await new FleetHarness().start();
    const evil = join(h.work, "w $(touch M1) `touch M2` 'q' \"d\"; touch M3 #(touch M4)");
    mkdirSync(evil);
    const res = await h.startAgent({
      name: "evil",
      workdir: evil,
      command: `printf '%s\\n' "$(pwd)" '$(touch M5)' '\`echo\` is quoted' "#(touch M6) #{pane_id}" > "${h.work}/out.txt"; exec sleep 300`,
      env: { E: "$(touch M7); `touch M8`" },
    });
    expect(res.agent!.workdir).toBe(evil);
    // The shell creates out.txt before printf writes to it: wait for all four lines.
    const out = await waitFor("out.txt with four lines", () => {
      const text = existsSync(join(h.work, "out.txt")) ? readFileSync(join(h.work, "out.txt"), "utf8") : "";
      return text.split("\n").length > 4 && text;
    });
    expect(out).toBe(`${evil}\n$(touch M5)\n\`echo\` is quoted\n#(touch M6) #{pane_id}\n`);
    for (const d of [h.work, evil, h.dir, "/tmp"]) for (const m of ["M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8"]) expect(existsSync(join(d, m))).toBe(false);
  });

  it("writes the heartbeat file at once and then every interval", async () => {
    h = await new FleetHarness().start();
    const t0 = Date.now();
    const a = (await h.startAgent({ name: "hb", command: "sleep 300", heartbeatIntervalSeconds: 1 })).agent!;
    expect(a.heartbeatFile).toBe(join(h.hbDir, "hb.hb"));
    expect(a.heartbeatIntervalSeconds).toBe(1);
    const first = readFileSync(a.heartbeatFile, "utf8").split("\n");
    expect(first[0]).toMatch(/^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(first.slice(1, 5)).toEqual([`pid=${a.panePid}`, "status=ok", "runtime=test", "agent=hb"]);
    // Written for this start: not older than the second the start began in.
    expect(Date.parse(first[0]!.slice(3))).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000);
    const seen = new Set<string>([first[0]!]);
    await waitFor("three distinct heartbeat timestamps", () => {
      seen.add(readFileSync(a.heartbeatFile, "utf8").split("\n")[0]!);
      return seen.size >= 3;
    }, 6000);
    expect((await h.getAgent("hb")).lastHeartbeatAt!.getTime()).toBeGreaterThan(t0);
  });

  it("puts the heartbeat in the request's heartbeat_dir", async () => {
    h = await new FleetHarness().start();
    const dir = join(h.hbDir, "custom-hb");
    const a = (await h.startAgent({ name: "hbdir", command: "sleep 300", heartbeatDir: dir })).agent!;
    expect(a.heartbeatFile).toBe(join(dir, "hbdir.hb"));
    expect(readFileSync(a.heartbeatFile, "utf8")).toContain("status=ok");
  });
});

describe("bad input", () => {
  it("answers INVALID_ARGUMENT naming the field", async () => {
    h = await new FleetHarness().start();
    const cases: Array<[Partial<fleet.StartAgentRequest>, string]> = [
      [{ name: "a.b" }, "name:"],
      [{ name: "a:b" }, "name:"],
      [{ name: "" }, "name:"],
      [{ name: "x".repeat(65) }, "name:"],
      [{ workdir: "relative/dir" }, "workdir:"],
      [{ workdir: join(h.dir, "missing") }, "workdir:"],
      [{ workdir: join(h.work, "..", "hb-not-there") }, "workdir:"],
      [{ command: "" }, "command:"],
      [{ command: "   " }, "command:"],
      [{ command: "sleep\0 1" }, "command:"],
      [{ heartbeatIntervalSeconds: 0 }, "heartbeat_interval_seconds:"],
      [{ heartbeatIntervalSeconds: 3601 }, "heartbeat_interval_seconds:"],
      [{ env: { "1BAD": "x" } }, "env"],
      [{ env: { "A B": "x" } }, "env"],
      [{ runtimeBinDirs: ["rel/bin"] }, "runtime_bin_dirs[0]:"],
      [{ heartbeatDir: "rel" }, "heartbeat_dir:"],
    ];
    for (const [req, field] of cases) {
      const err = await rejection(h.startAgent({ name: "ok", command: "sleep 1", ...req }));
      expect(err.code, JSON.stringify(req)).toBe(status.INVALID_ARGUMENT);
      expect(err.details, JSON.stringify(req)).toContain(field);
    }
    expect(h.sessions()).toEqual([]);
  });

  it("answers NOT_FOUND for an unknown agent and INVALID_ARGUMENT for bad names elsewhere", async () => {
    h = await new FleetHarness().start();
    expect((await rejection(h.getAgent("nobody"))).code).toBe(status.NOT_FOUND);
    const c = h.client;
    expect((await rejection(call(c, c.stopAgent, { name: "nobody", graceSeconds: 1 }))).code).toBe(status.NOT_FOUND);
    expect((await rejection(call(c, c.captureOutput, { name: "x.y", lines: 0 }))).details).toContain("name:");
    expect((await rejection(call(c, c.sendInput, { name: "nobody", text: "hi", pressEnter: false }))).code).toBe(status.NOT_FOUND);
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
