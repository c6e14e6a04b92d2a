import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { once } from "node:events";
import { resolve } from "node:path";
import { constants } from "node:os";
import { fleet } from "@skein/proto";
import { say, type Command } from "../command.js";
import { START_TIMEOUT_MS } from "../clients.js";
import { CliError, describe } from "../errors.js";
import { age, enumLabel, json, localTime, shellQuote, table } from "../format.js";
import { follow, onInterrupt } from "../follow.js";
import { jsonOption } from "../options.js";
import { completeJson } from "../proto-json.js";
import { followLogs } from "./fleet-logs-follow.js";

const RESTART: Record<string, fleet.RestartPolicy> = {
  never: fleet.RestartPolicy.RESTART_POLICY_NEVER,
  "on-failure": fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE,
  always: fleet.RestartPolicy.RESTART_POLICY_ALWAYS,
};

const ended = (a: fleet.Agent) => a.state === fleet.AgentState.AGENT_STATE_STOPPED || a.state === fleet.AgentState.AGENT_STATE_EXITED;

/** e.g. "running", "exited(3) 2m ago gave-up", "stopped 5m ago". */
function stateLabel(a: fleet.Agent, now: number): string {
  const state = enumLabel(fleet.agentStateToJSON(a.state), "AGENT_STATE_");
  const exit = a.state === fleet.AgentState.AGENT_STATE_EXITED && a.exitStatus !== undefined ? `(${a.exitStatus})` : "";
  const when = ended(a) && a.endedAt ? ` ${age(a.endedAt, now)} ago` : "";
  return `${state}${exit}${when}${a.gaveUp ? " gave-up" : ""}`;
}

/** e.g. "waiting 3m", "working", "idle 10m", "-" for an agent that does not run. */
function activityLabel(a: fleet.Agent, now: number): string {
  switch (a.activity) {
    case fleet.Activity.ACTIVITY_WAITING:
      return `waiting ${age(a.activitySince, now)}`;
    case fleet.Activity.ACTIVITY_IDLE:
      return `idle ${age(a.activitySince, now)}`;
    case fleet.Activity.ACTIVITY_WORKING:
      return "working";
    default:
      return ended(a) ? "-" : "unknown";
  }
}

/** The last line of a waiting agent's prompt, shortened to fit a table row. */
function promptLine(waitingFor: string): string {
  const line = waitingFor.trimEnd().split("\n").pop()?.trim() ?? "";
  if (line === "") return "-";
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/** `REPO[:BRANCH]`: split at the last ':', unless the whole is a directory (a path with a ':' in it). */
function worktreeOption(spec: string): { repo: string; branch: string } {
  const colon = spec.lastIndexOf(":");
  if (colon <= 0 || isDirectory(spec)) return { repo: resolve(spec), branch: "" };
  return { repo: resolve(spec.slice(0, colon)), branch: spec.slice(colon + 1) };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const start: Command = {
  name: "fleet start",
  synopsis: "NAME [--dir D | --worktree REPO[:BRANCH] [--base REF] [--setup CMD]] [--runtime R] [--bin DIR]… [--env K=V]… [--restart never|on-failure|always] [--notify URL] -- COMMAND…",
  summary: "start an agent in its own tmux session (idempotent)",
  details: [
    "COMMAND…  one word is taken as a shell command line as is (`-- 'pi --model x'`);",
    "          several words are quoted for the shell (`-- pi --model x`)",
  ],
  options: {
    dir: { type: "string", value: "D", help: "working directory of the pane (default: the current directory)", complete: "directory" },
    runtime: { type: "string", value: "R", help: "runtime label written to the heartbeat (pi, claude, codex, goose, …)" },
    bin: { type: "string", value: "DIR", multiple: true, help: "put DIR first on the pane's PATH", complete: "directory" },
    env: { type: "string", value: "K=V", multiple: true, help: "export K=V in the pane before the command" },
    restart: { type: "string", value: "P", help: "restart policy: never (default), on-failure, always", choices: Object.keys(RESTART) },
    worktree: { type: "string", value: "REPO[:BRANCH]", help: "run in a new git worktree of REPO, on BRANCH (default skein/NAME; made from --base when new)", complete: "directory" },
    base: { type: "string", value: "REF", help: "with --worktree: where a new branch starts (default: REPO's HEAD)" },
    setup: { type: "string", value: "CMD", help: "with --worktree: shell command run in the worktree first (copy .env, install dependencies)" },
    notify: { type: "string", value: "URL", help: "POST a JSON webhook here when the agent waits, goes idle, exits or fails (default: the service's SKEIN_FLEET_WEBHOOK_URL)" },
    ...jsonOption(),
  },
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    inv.atMost(1);
    const words = inv.rest ?? [];
    if (words.length === 0) throw inv.usage("missing COMMAND after --");
    const command = words.length === 1 ? words[0]! : words.map(shellQuote).join(" ");
    const env: Record<string, string> = {};
    for (const kv of inv.strings("env")) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw inv.usage(`--env takes KEY=VALUE, got ${JSON.stringify(kv)}`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    const restartRaw = inv.string("restart");
    const restartPolicy = restartRaw === undefined ? fleet.RestartPolicy.RESTART_POLICY_UNSPECIFIED : RESTART[restartRaw];
    if (restartPolicy === undefined) throw inv.usage(`--restart must be never, on-failure or always, got ${JSON.stringify(restartRaw)}`);
    const worktreeRaw = inv.string("worktree");
    if (worktreeRaw !== undefined && inv.string("dir") !== undefined) throw inv.usage("--dir and --worktree exclude each other: the worktree is the agent's directory");
    if (worktreeRaw === undefined && (inv.string("base") !== undefined || inv.string("setup") !== undefined)) throw inv.usage("--base and --setup go with --worktree");
    const worktree = worktreeRaw === undefined ? undefined : { ...worktreeOption(worktreeRaw), base: inv.string("base") ?? "", setupCommand: inv.string("setup") ?? "" };
    const f = inv.conn.fleet();
    const res = await f.call(
      f.client.startAgent,
      fleet.StartAgentRequest.fromPartial({
        name,
        workdir: worktree ? "" : resolve(inv.string("dir") ?? "."),
        worktree,
        notifyUrl: inv.string("notify"),
        command,
        runtime: inv.string("runtime") ?? "",
        runtimeBinDirs: inv.strings("bin").map((d) => resolve(d)),
        env,
        restartPolicy,
      }),
      START_TIMEOUT_MS,
    );
    const a = res.agent!;
    if (inv.json) say(json(completeJson(fleet, "StartAgentResponse", res)));
    else if (res.alreadyRunning) say(`${a.name} already running`);
    else say(`started ${a.name} (pane ${a.paneId}, pid ${a.panePid})${a.worktree ? ` in worktree ${a.worktree.path} (branch ${a.worktree.branch})` : ""}`);
    return 0;
  },
};

const ls: Command = {
  name: "fleet ls",
  synopsis: "",
  summary: "list agents (name, state and since when it ended, activity, runtime, pid, restarts, heartbeat age)",
  details: ["activity: working, waiting 3m (for a person, for 3 minutes), idle 10m (no output for 10 minutes)"],
  options: { waiting: { type: "boolean", help: "only agents waiting for a person, longest waiting first, with the last line of what they ask" }, ...jsonOption() },
  services: ["fleet"],
  async run(inv) {
    inv.atMost(0);
    const f = inv.conn.fleet();
    const res = await f.call(f.client.listAgents, fleet.ListAgentsRequest.fromPartial({}));
    if (inv.flag("waiting")) {
      res.agents = res.agents.filter((a) => a.activity === fleet.Activity.ACTIVITY_WAITING).sort((x, y) => (x.activitySince?.getTime() ?? 0) - (y.activitySince?.getTime() ?? 0));
    }
    if (inv.json) {
      say(json(completeJson(fleet, "ListAgentsResponse", res)));
      return 0;
    }
    if (res.agents.length === 0) {
      say(inv.flag("waiting") ? "no agent is waiting" : "no agents");
      return 0;
    }
    const now = Date.now();
    // An agent that ended has no process and no heartbeat to age: its state says when it ended.
    const rows = res.agents.map((a) => [
      a.name,
      stateLabel(a, now),
      activityLabel(a, now),
      a.runtime || "-",
      a.panePid > 0 && !ended(a) ? String(a.panePid) : "-",
      String(a.restarts),
      ended(a) ? "-" : age(a.lastHeartbeatAt, now),
    ]);
    if (inv.flag("waiting")) {
      // What each waits for: the prompt's last line, as the agent shows it.
      res.agents.forEach((a, i) => rows[i]!.push(promptLine(a.waitingFor)));
      say(table(["name", "state", "activity", "runtime", "pid", "restarts", "heartbeat", "waiting for"], rows));
      return 0;
    }
    say(table(["name", "state", "activity", "runtime", "pid", "restarts", "heartbeat"], rows));
    return 0;
  },
};

const stop: Command = {
  name: "fleet stop",
  synopsis: "NAME [--grace S]",
  summary: "stop an agent: SIGTERM, SIGKILL after the grace period, then its tmux session",
  options: { grace: { type: "string", value: "S", help: "seconds between SIGTERM and SIGKILL (default: the service's, 10)" }, ...jsonOption() },
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    inv.atMost(1);
    const grace = inv.int("grace", 0, 3600);
    const f = inv.conn.fleet();
    // The service waits out the grace period before it answers.
    const timeout = (grace ?? 10) * 1000 + START_TIMEOUT_MS;
    const res = await f.call(f.client.stopAgent, fleet.StopAgentRequest.fromPartial({ name, graceSeconds: grace }), timeout);
    say(inv.json ? json(completeJson(fleet, "StopAgentResponse", res)) : `stopped ${name}`);
    return 0;
  },
};

const rm: Command = {
  name: "fleet rm",
  synopsis: "NAME…",
  summary: "remove stopped or exited agents, with their kept output, heartbeat files and clean worktrees",
  details: ["Each NAME is tried; any failure makes the exit status 1.", "A worktree with changes is refused (the changed files are listed) unless --force; its branch stays."],
  options: { force: { type: "boolean", help: "remove agents' worktrees even with changes (their branches stay)" }, ...jsonOption('print {"removed": [agent, …]} with every field of each removed agent') },
  services: ["fleet"],
  async run(inv) {
    inv.arg(0, "NAME");
    const f = inv.conn.fleet();
    const removed: fleet.Agent[] = [];
    let failed = false;
    for (const name of inv.positionals) {
      try {
        removed.push((await f.call(f.client.removeAgent, fleet.RemoveAgentRequest.fromPartial({ name, force: inv.flag("force") }))).agent!);
        if (!inv.json) say(`removed ${name}`);
      } catch (err) {
        failed = true;
        process.stderr.write(`skein: ${describe(err)}\n`);
      }
    }
    if (inv.json) say(json({ removed: removed.map((a) => completeJson(fleet, "Agent", a)) }));
    return failed ? 1 : 0;
  },
};

const logs: Command = {
  name: "fleet logs",
  synopsis: "NAME [-n N] [-f]",
  summary: "print the last lines of an agent's pane (kept after it stopped or exited)",
  options: {
    lines: { type: "string", short: "n", value: "N", help: "how many lines (1–10000; default 100)" },
    follow: { type: "boolean", short: "f", help: "print new lines as they appear, until Ctrl-C or the agent ends (stopped, or exited with no restart coming)" },
    ...jsonOption("print JSON instead of text (with -f: one {\"text\"} object per batch of new lines)"),
  },
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    inv.atMost(1);
    const lines = inv.int("lines", 1, 10_000) ?? 0;
    const f = inv.conn.fleet();
    if (inv.flag("follow")) return followLogs(f, name, lines, inv.json);
    const res = await f.call(f.client.captureOutput, fleet.CaptureOutputRequest.fromPartial({ name, lines }));
    if (inv.json) say(json(completeJson(fleet, "CaptureOutputResponse", res)));
    else {
      // The service ends the text with a newline; say() adds its own.
      const text = res.text.replace(/\s+$/, "");
      if (text !== "") say(text);
    }
    return 0;
  },
};

const send: Command = {
  name: "fleet send",
  synopsis: "NAME TEXT… [--no-enter]",
  summary: "type text into an agent's pane, then Enter",
  options: { "no-enter": { type: "boolean", help: "type the text without pressing Enter" } },
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    const words = inv.positionals.slice(1);
    if (words.length === 0) throw inv.usage("missing TEXT");
    const f = inv.conn.fleet();
    await f.call(f.client.sendInput, fleet.SendInputRequest.fromPartial({ name, text: words.join(" "), pressEnter: !inv.flag("no-enter") }));
    return 0;
  },
};

const attach: Command = {
  name: "fleet attach",
  synopsis: "NAME",
  summary: "attach this terminal to an agent's tmux session (on the fleet service's host)",
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    inv.atMost(1);
    const f = inv.conn.fleet();
    const res = await f.call(f.client.getAgent, fleet.GetAgentRequest.fromPartial({ name }));
    f.close();
    if (res.agent!.state === fleet.AgentState.AGENT_STATE_STOPPED) {
      throw new CliError(`agent ${name} is stopped: it has no tmux session to attach to (its last output: skein fleet logs ${name})`);
    }
    // tmux would answer "open terminal failed: not a terminal", after a moment.
    if (!process.stdin.isTTY || !process.stdout.isTTY) throw new CliError(`fleet attach needs a terminal: stdin and stdout must be one (to read ${name}'s output: skein fleet logs ${name})`);
    const socket = res.agent!.tmuxSocket;
    // Node cannot exec(3): run tmux on this terminal and pass its exit status on.
    const child = spawn("tmux", ["-L", socket, "attach", "-t", `=${name}`], { stdio: "inherit" });
    const off = onInterrupt(() => {}); // Ctrl-C belongs to tmux
    try {
      const [code, signal] = (await Promise.race([
        once(child, "exit"),
        once(child, "error").then(([err]) => {
          const e = err as NodeJS.ErrnoException;
          throw new CliError(e.code === "ENOENT" ? "tmux not found on PATH (attach runs on the fleet service's host)" : `cannot run tmux: ${e.message}`);
        }),
      ])) as [number | null, NodeJS.Signals | null];
      if (signal) return 128 + (constants.signals[signal] ?? 0);
      return code ?? 1;
    } finally {
      off();
    }
  },
};

const watch: Command = {
  name: "fleet watch",
  synopsis: "[NAME…]",
  summary: "follow agent state changes (started, exited, restarted, stopped, stale heartbeat, removed, activity)",
  details: ["NAME…  only these agents (default: all)", "Ctrl-C stops watching."],
  options: jsonOption("print each event as one JSON object per line"),
  services: ["fleet"],
  async run(inv) {
    const f = inv.conn.fleet();
    const stream = f.client.watchAgents(fleet.WatchAgentsRequest.fromPartial({ names: [...inv.positionals] }), f.metadata());
    return follow(f, stream, (e) => {
      if (inv.json) return say(JSON.stringify(completeJson(fleet, "WatchAgentsResponse", e)));
      const what = enumLabel(fleet.agentEventTypeToJSON(e.type), "AGENT_EVENT_TYPE_");
      const detail = e.message === what ? "" : e.message;
      say([localTime(e.at), what.padEnd(15), e.agent?.name ?? "-", detail].filter((x) => x !== "").join("  "));
    });
  },
};

export const fleetCommands: readonly Command[] = [start, ls, stop, rm, logs, send, attach, watch];
