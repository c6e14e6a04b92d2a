import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killTmuxServer, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectOneLineError, haveScript, killClis, runCli, spawnCli } from "./cli.js";

let dir: string;
let socket: string;
let svc: ServiceProcess | undefined;
let env: Record<string, string>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-cli-fleet-"));
  socket = `skein-test-cli-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  svc = await startService("fleet", { SKEIN_TMUX_SOCKET: socket, SKEIN_HEARTBEAT_INTERVAL: "1" });
  env = { SKEIN_FLEET_ADDR: svc.address };
});

afterEach(async () => {
  killClis();
  await svc?.stop("SIGKILL");
  svc = undefined;
  killTmuxServer(socket);
  await rm(dir, { recursive: true, force: true });
});

/** Polls `skein fleet logs` until the pane shows `match`. */
async function logsUntil(name: string, match: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000;
  let last = "";
  while (Date.now() < deadline) {
    last = (await runCli(["fleet", "logs", name, "-n", "50"], env)).stdout;
    if (match.test(last)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`pane of ${name} never showed ${match}; last capture:\n${last}`);
}

describe("skein fleet", () => {
  it("starts (idempotently), lists, shows logs, sends input and stops an agent", async () => {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const started = await runCli(["fleet", "start", "cli-agent", "--dir", dir, "--runtime", "sh", "--bin", bin, "--env", "GREETING=hi there", "--", "sh", "-c", 'echo "ready: $GREETING in $(pwd)"; exec cat'], env);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^started cli-agent \(pane %\d+, pid \d+\)\n$/);

    const again = await runCli(["fleet", "start", "cli-agent", "--", "sleep", "100"], env);
    expect(again).toMatchObject({ code: 0, stdout: "cli-agent already running\n" });

    const logs = await logsUntil("cli-agent", /ready: hi there in /);
    expect(logs).toContain(`ready: hi there in ${dir}`);
    expect(logs.endsWith("\n") && !logs.endsWith("\n\n")).toBe(true);

    const ls = await runCli(["fleet", "ls"], env);
    const [header, row] = ls.stdout.split("\n");
    expect(header).toMatch(/^NAME\s+STATE\s+ACTIVITY\s+RUNTIME\s+PID\s+RESTARTS\s+HEARTBEAT$/);
    expect(row).toMatch(/^cli-agent\s+running\s+(unknown|working)\s+sh\s+\d+\s+0\s+(\d+s|-)$/);
    const listed = JSON.parse((await runCli(["fleet", "ls", "--json"], env)).stdout) as { agents: { name: string; state: string; runtimeBinDirs: string[] }[] };
    expect(listed.agents).toHaveLength(1);
    expect(listed.agents[0]).toMatchObject({ name: "cli-agent", state: "AGENT_STATE_RUNNING", runtimeBinDirs: [bin] });
    // Zero and empty values are there for scripts, not left out.
    expect(listed.agents[0]).toMatchObject({ restarts: 0, gaveUp: false, exitStatus: null });

    expect((await runCli(["fleet", "send", "cli-agent", "echoed", "back"], env)).code).toBe(0);
    // cat prints the line back once Enter arrives: twice on screen.
    await logsUntil("cli-agent", /echoed back\n(.*\n)?echoed back/);
    expect((await runCli(["fleet", "send", "cli-agent", "pending", "--no-enter"], env)).code).toBe(0);
    const pending = await logsUntil("cli-agent", /pending/);
    expect(pending.match(/pending/g)).toHaveLength(1);

    const lines = await runCli(["fleet", "logs", "cli-agent", "-n", "1", "--json"], env);
    expect(typeof (JSON.parse(lines.stdout) as { text: string }).text).toBe("string");

    const stopped = await runCli(["fleet", "stop", "cli-agent", "--grace", "1"], env);
    expect(stopped).toMatchObject({ code: 0, stdout: "stopped cli-agent\n" });
    const after = JSON.parse((await runCli(["fleet", "ls", "--json"], env)).stdout) as { agents?: { state: string }[] };
    expect(after.agents?.every((a) => a.state !== "AGENT_STATE_RUNNING") ?? true).toBe(true);
  });

  it("passes one COMMAND word through as a shell command line", async () => {
    const r = await runCli(["fleet", "start", "one-word", "--dir", dir, "--", "echo one-word-$((40+2)); exec cat"], env);
    expect(r.code, r.stderr).toBe(0);
    await logsUntil("one-word", /one-word-42/);
  });

  it("refuses bad arguments before calling the service, and reports the service's own refusals", async () => {
    const noCommand = await runCli(["fleet", "start", "x"], env);
    expect(noCommand.code).toBe(2);
    expect(expectOneLineError(noCommand)).toContain("missing COMMAND after --");
    const badEnv = await runCli(["fleet", "start", "x", "--env", "NOEQUALS", "--", "true"], env);
    expect(expectOneLineError(badEnv)).toContain("--env takes KEY=VALUE");
    const badPolicy = await runCli(["fleet", "start", "x", "--restart", "sometimes", "--", "true"], env);
    expect(expectOneLineError(badPolicy)).toContain("--restart must be never, on-failure or always");
    const badName = await runCli(["fleet", "start", "bad.name", "--", "true"], env);
    expect(badName.code).toBe(1);
    expect(expectOneLineError(badName)).toMatch(/^skein: INVALID_ARGUMENT: name/);
    const missing = await runCli(["fleet", "stop", "nobody"], env);
    expect(missing.code).toBe(1);
    expect(expectOneLineError(missing)).toMatch(/^skein: NOT_FOUND: .*nobody/);
  });

  it("watch prints state changes until Ctrl-C", async () => {
    const w = spawnCli(["fleet", "watch"], env);
    // Nothing says when the stream is open: start agents until the watch sees one.
    let name = "";
    for (let i = 0; i < 20 && name === ""; i++) {
      expect((await runCli(["fleet", "start", `watched-${i}`, "--dir", dir, "--", "sleep", "30"], env)).code).toBe(0);
      name = await w.waitFor(new RegExp(`started\\s+watched-${i}\\b`), "stdout", 1_000).then(() => `watched-${i}`, () => "");
    }
    expect(name).not.toBe("");
    expect((await runCli(["fleet", "stop", name, "--grace", "1"], env)).code).toBe(0);
    await w.waitFor(new RegExp(`stopped\\s+${name}`));
    w.proc.kill("SIGINT");
    expect((await w.result).code).toBe(0);
  });

  it.skipIf(!haveScript())("attach runs `tmux -L <socket> attach -t =NAME` on this terminal and passes its exit status on", async () => {
    expect((await runCli(["fleet", "start", "attached", "--dir", dir, "--", "sleep", "30"], env)).code).toBe(0);
    // A stand-in tmux on the CLI's PATH (not the service's) records how it was called.
    const fake = join(dir, "fake-bin");
    mkdirSync(fake);
    const record = join(dir, "tmux-args");
    writeFileSync(join(fake, "tmux"), `#!/bin/sh\nprintf '%s\\n' "$@" > '${record}'\nexit 7\n`);
    chmodSync(join(fake, "tmux"), 0o755);
    const c = spawnCli(["fleet", "attach", "attached"], { ...env, PATH: `${fake}:${process.env.PATH}` }, { terminal: true });
    const r = await c.result;
    expect(r.code, r.stdout).toBe(7);
    expect(readFileSync(record, "utf8").trimEnd().split("\n")).toEqual(["-L", socket, "attach", "-t", "=attached"]);
  });

  it("attach on a stopped agent, or without a terminal, says so in one line", async () => {
    expect((await runCli(["fleet", "start", "quiet", "--dir", dir, "--", "sleep", "30"], env)).code).toBe(0);
    const noTerminal = await runCli(["fleet", "attach", "quiet"], env);
    expect(noTerminal.code).toBe(1);
    expect(expectOneLineError(noTerminal)).toMatch(/^skein: fleet attach needs a terminal/);
    expect((await runCli(["fleet", "stop", "quiet", "--grace", "0"], env)).code).toBe(0);
    const stopped = await runCli(["fleet", "attach", "quiet"], env);
    expect(stopped.code).toBe(1);
    expect(expectOneLineError(stopped)).toMatch(/^skein: agent quiet is stopped: it has no tmux session to attach to/);
  });

  it("ls shows who waits and since when, --waiting only them; send answers; start --worktree gives an agent its own checkout", async () => {
    const ask = "printf 'Do you want to proceed? (y/n) '; read a; echo \"got $a\"; exec sleep 300";
    expect((await runCli(["fleet", "start", "asker", "--dir", dir, "--", "sh", "-c", ask], env)).code).toBe(0);
    expect((await runCli(["fleet", "start", "quiet", "--dir", dir, "--", "sleep", "300"], env)).code).toBe(0);
    const deadline = Date.now() + 15_000;
    let waiting = "";
    while (Date.now() < deadline && !/^asker\s+running\s+waiting \d+s/m.test(waiting)) {
      waiting = (await runCli(["fleet", "ls", "--waiting"], env)).stdout;
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(waiting).toMatch(/^asker\s+running\s+waiting \d+s\s+-\s+\d+\s+0\s+\S+\s+Do you want to proceed\? \(y\/n\)$/m);
    expect(waiting).not.toMatch(/^quiet/m);
    expect((await runCli(["fleet", "send", "asker", "y"], env)).code).toBe(0);
    expect((await runCli(["fleet", "ls"], env)).stdout).toMatch(/^asker\s+running\s+working\s+/m);
    expect((await runCli(["fleet", "ls", "--waiting"], env)).stdout).toBe("no agent is waiting\n");

    const repo = join(dir, "repo");
    mkdirSync(repo);
    const git = (...args: string[]) => execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { stdio: "ignore" });
    git("init", "-q", "-b", "main");
    git("commit", "-q", "--allow-empty", "-m", "first");
    const started = await runCli(["fleet", "start", "coder", "--worktree", `${repo}:feature-x`, "--setup", "echo set up", "--", "sleep", "300"], env);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(new RegExp(`in worktree ${join(dir, ".skein-worktrees", "coder")} \\(branch feature-x\\)`));
    expect((await runCli(["fleet", "start", "bad", "--dir", dir, "--worktree", repo, "--", "sleep", "1"], env)).code).toBe(2);
  });

  it("ls says when stopped and exited agents ended; rm removes them, refuses a running one and reports each failure", async () => {
    expect((await runCli(["fleet", "start", "done", "--dir", dir, "--", "sleep", "30"], env)).code).toBe(0);
    expect((await runCli(["fleet", "start", "failed", "--dir", dir, "--", "sh", "-c", "exit 3"], env)).code).toBe(0);
    expect((await runCli(["fleet", "start", "busy", "--dir", dir, "--", "sleep", "30"], env)).code).toBe(0);
    expect((await runCli(["fleet", "stop", "done", "--grace", "0"], env)).code).toBe(0);
    const deadline = Date.now() + 10_000;
    let ls = "";
    while (Date.now() < deadline && !/^failed\s+exited/m.test(ls)) {
      ls = (await runCli(["fleet", "ls"], env)).stdout;
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(ls).toMatch(/^busy\s+running\s+(unknown|working)\s+-\s+\d+\s+0\s+(\d+s|-)$/m);
    // Ended: when, in the state column; no activity, no pid, no heartbeat age.
    expect(ls).toMatch(/^done\s+stopped \d+s ago\s+-\s+-\s+-\s+0\s+-$/m);
    expect(ls).toMatch(/^failed\s+exited\(3\) \d+s ago\s+-\s+-\s+-\s+0\s+-$/m);

    const rm = await runCli(["fleet", "rm", "done", "busy", "failed", "nobody"], env);
    expect(rm.code).toBe(1);
    expect(rm.stdout).toBe("removed done\nremoved failed\n");
    const errors = rm.stderr.trimEnd().split("\n");
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^skein: FAILED_PRECONDITION: agent busy is running; stop it first$/);
    expect(errors[1]).toMatch(/^skein: NOT_FOUND: .*nobody/);
    const left = JSON.parse((await runCli(["fleet", "ls", "--json"], env)).stdout) as { agents: { name: string }[] };
    expect(left.agents.map((a) => a.name)).toEqual(["busy"]);
    expect((await runCli(["fleet", "rm"], env)).code).toBe(2);
  });

  it("logs prints a stopped agent's last screen, and an exited one's without blank rows before 'Pane is dead'", async () => {
    expect((await runCli(["fleet", "start", "brief", "--dir", dir, "--", "sh", "-c", "echo bye; exit 2"], env)).code).toBe(0);
    const exited = await logsUntil("brief", /Pane is dead/);
    expect(exited).toMatch(/^bye\nPane is dead \(status 2, [^\n]*\)\n$/);
    expect((await runCli(["fleet", "start", "stopper", "--dir", dir, "--", "sh", "-c", "echo kept-line; exec sleep 30"], env)).code).toBe(0);
    await logsUntil("stopper", /kept-line/);
    expect((await runCli(["fleet", "stop", "stopper", "--grace", "0"], env)).code).toBe(0);
    const kept = await runCli(["fleet", "logs", "stopper"], env);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(/^kept-line\nPane is dead/);
  });

  it("logs -f prints new lines as they appear until Ctrl-C", async () => {
    expect((await runCli(["fleet", "start", "chatty", "--dir", dir, "--", "sh", "-c", "echo first-line; exec cat"], env)).code).toBe(0);
    await logsUntil("chatty", /first-line/);
    const f = spawnCli(["fleet", "logs", "chatty", "-f"], env);
    await f.waitFor(/first-line\n/);
    expect((await runCli(["fleet", "send", "chatty", "second-line"], env)).code).toBe(0);
    // Typed, then echoed by cat: twice on the pane, so twice in the output.
    await f.waitFor(/second-line\nsecond-line\n/);
    expect((await runCli(["fleet", "send", "chatty", "third-line"], env)).code).toBe(0);
    await f.waitFor(/third-line\nthird-line\n/);
    f.proc.kill("SIGINT");
    const r = await f.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("first-line\nsecond-line\nsecond-line\nthird-line\nthird-line\n");
  });

  it("logs -f ends by itself with the agent's last screen when the agent ends", async () => {
    expect((await runCli(["fleet", "start", "ender", "--dir", dir, "--", "sh", "-c", "echo one; sleep 1; echo two; sleep 1; exit 0"], env)).code).toBe(0);
    const f = spawnCli(["fleet", "logs", "ender", "-f"], env);
    const r = await f.result;
    expect(r.code, r.stderr).toBe(0);
    // Each line once, however the looks fell between them; the pane's death line last.
    expect(r.stdout).toMatch(/^one\ntwo\nPane is dead \(status 0, [^\n]*\)\n$/);
  });
});
