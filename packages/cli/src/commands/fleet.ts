import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { constants } from "node:os";
import { fleet } from "@skein/proto";
import { say, type Command } from "../command.js";
import { START_TIMEOUT_MS } from "../clients.js";
import { CliError } from "../errors.js";
import { age, enumLabel, json, localTime, shellQuote, table } from "../format.js";
import { follow, onInterrupt } from "../follow.js";
import { jsonOption } from "../options.js";
import { completeJson } from "../proto-json.js";

const RESTART: Record<string, fleet.RestartPolicy> = {
  never: fleet.RestartPolicy.RESTART_POLICY_NEVER,
  "on-failure": fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE,
  always: fleet.RestartPolicy.RESTART_POLICY_ALWAYS,
};

function stateLabel(a: fleet.Agent): string {
  const state = enumLabel(fleet.agentStateToJSON(a.state), "AGENT_STATE_");
  const exit = a.state === fleet.AgentState.AGENT_STATE_EXITED && a.exitStatus !== undefined ? `(${a.exitStatus})` : "";
  return `${state}${exit}${a.gaveUp ? " gave-up" : ""}`;
}

const start: Command = {
  name: "fleet start",
  synopsis: "NAME [--dir D] [--runtime R] [--bin DIR]… [--env K=V]… [--restart never|on-failure|always] -- COMMAND…",
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
    const f = inv.conn.fleet();
    const res = await f.call(
      f.client.startAgent,
      fleet.StartAgentRequest.fromPartial({
        name,
        workdir: resolve(inv.string("dir") ?? "."),
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
    else say(`started ${a.name} (pane ${a.paneId}, pid ${a.panePid})`);
    return 0;
  },
};

const ls: Command = {
  name: "fleet ls",
  synopsis: "",
  summary: "list agents (name, state, runtime, pid, restarts, heartbeat age)",
  options: jsonOption(),
  services: ["fleet"],
  async run(inv) {
    inv.atMost(0);
    const f = inv.conn.fleet();
    const res = await f.call(f.client.listAgents, fleet.ListAgentsRequest.fromPartial({}));
    if (inv.json) {
      say(json(completeJson(fleet, "ListAgentsResponse", res)));
      return 0;
    }
    if (res.agents.length === 0) {
      say("no agents");
      return 0;
    }
    const now = Date.now();
    const rows = res.agents.map((a) => [a.name, stateLabel(a), a.runtime || "-", a.panePid > 0 ? String(a.panePid) : "-", String(a.restarts), age(a.lastHeartbeatAt, now)]);
    say(table(["name", "state", "runtime", "pid", "restarts", "heartbeat"], rows));
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

const logs: Command = {
  name: "fleet logs",
  synopsis: "NAME [-n N]",
  summary: "print the last lines of an agent's pane",
  options: { lines: { type: "string", short: "n", value: "N", help: "how many lines (1–10000; default 100)" }, ...jsonOption() },
  services: ["fleet"],
  async run(inv) {
    const name = inv.arg(0, "NAME");
    inv.atMost(1);
    const lines = inv.int("lines", 1, 10_000) ?? 0;
    const f = inv.conn.fleet();
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
  summary: "follow agent state changes (started, exited, restarted, stopped, stale heartbeat)",
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

export const fleetCommands: readonly Command[] = [start, ls, stop, logs, send, attach, watch];
