import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { call, rejection } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

const { AGENT_STATE_EXITED, AGENT_STATE_STOPPED } = fleet.AgentState;
const E = fleet.AgentEventType;

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

const capture = (name: string, lines = 100) => call(h.client, h.client.captureOutput, { name, lines }).then((r) => r.text);
const remove = (name: string) => call(h.client, h.client.removeAgent, fleet.RemoveAgentRequest.fromPartial({ name }));
const stop = (name: string) => call(h.client, h.client.stopAgent, { name, graceSeconds: 1 });
const list = () => call(h.client, h.client.listAgents, {}).then((r) => r.agents.map((a) => a.name));
const stateFile = () => JSON.parse(readFileSync(join(h.stateDir, `fleet-${h.socket}.json`), "utf8")) as { agents: { spec: { name: string } }[] };
const outputDir = () => join(h.stateDir, `fleet-${h.socket}-output`);

async function runningWith(name: string, command: string, shows: RegExp, extra: Partial<fleet.StartAgentRequest> = {}): Promise<fleet.Agent> {
  const a = (await h.startAgent({ name, command, heartbeatIntervalSeconds: 1, ...extra })).agent!;
  await waitFor(`${name} to show ${shows}`, async () => shows.test(await capture(name)));
  return a;
}

/** Follows WatchAgents of `name` into an array; resolves once the stream is known to be open. */
async function watchOf(name: string) {
  const events: fleet.WatchAgentsResponse[] = [];
  const stream = h.client.watchAgents({ names: [name, "probe"] });
  let probed = false;
  stream.on("data", (e: fleet.WatchAgentsResponse) => (e.agent?.name === "probe" ? (probed = true) : events.push(e)));
  stream.on("error", () => undefined);
  await h.startAgent({ name: "probe", command: "sleep 300" });
  await waitFor("the watch to be open", () => probed);
  await stop("probe");
  await remove("probe");
  return { events, stop: () => stream.cancel() };
}

describe("RemoveAgent", () => {
  it("refuses a running agent, forgets a stopped one with its heartbeat and kept output, also across a service restart", async () => {
    h = await new FleetHarness().start();
    const a = await runningWith("gone-soon", "sh -c 'echo last words; exec sleep 300'", /last words/);
    await waitFor("heartbeat", () => existsSync(a.heartbeatFile));

    const running = await rejection(remove("gone-soon"));
    expect(running.code).toBe(status.FAILED_PRECONDITION);
    expect(running.details).toMatch(/gone-soon is running; stop it first/);
    expect((await rejection(remove("nobody"))).code).toBe(status.NOT_FOUND);
    expect((await rejection(remove("bad.name"))).code).toBe(status.INVALID_ARGUMENT);

    await stop("gone-soon");
    expect(existsSync(join(outputDir(), "gone-soon.txt"))).toBe(true);
    const w = await watchOf("gone-soon");
    const removed = (await remove("gone-soon")).agent!;
    expect(removed).toMatchObject({ name: "gone-soon", state: AGENT_STATE_STOPPED });
    expect(await list()).toEqual([]);
    expect((await rejection(h.getAgent("gone-soon"))).code).toBe(status.NOT_FOUND);
    expect(existsSync(a.heartbeatFile)).toBe(false);
    expect(readdirSync(outputDir())).toEqual([]);
    expect(stateFile().agents.map((x) => x.spec.name)).toEqual([]);
    await waitFor("removed event", () => w.events.some((e) => e.type === E.AGENT_EVENT_TYPE_REMOVED));
    expect(w.events.map((e) => e.type)).toEqual([E.AGENT_EVENT_TYPE_REMOVED]);
    w.stop();

    await h.restart();
    expect(await list()).toEqual([]);
    expect((await rejection(remove("gone-soon"))).code).toBe(status.NOT_FOUND);
  });

  it("removes an exited agent and its dead tmux session, cancelling a pending restart", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "crashy", command: "sh -c 'exit 3'", restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE });
    const exited = await waitFor("exited", async () => {
      const g = await h.getAgent("crashy");
      return g.state === AGENT_STATE_EXITED && g;
    });
    expect(h.sessions()).toEqual(["crashy"]);
    await remove("crashy");
    expect(h.sessions()).toEqual([]);
    // The restart that was due 1 s after the exit never comes: the service's supervisor runs past that moment without it.
    await h.beatPast(exited.endedAt!.getTime() + 1000);
    expect(h.sessions()).toEqual(["clock"]);
    expect((await list()).filter((n) => n !== "clock")).toEqual([]);
  });

  it("refuses an exited agent whose name has a live tmux session again", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "twice", command: "sh -c 'exit 0'" });
    await waitFor("exited", async () => (await h.getAgent("twice")).state === AGENT_STATE_EXITED);
    h.tmux("kill-session", "-t", "=twice");
    h.tmux("new-session", "-d", "-s", "twice", "sleep 300");
    const err = await rejection(remove("twice"));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toContain("stop it first");
    expect(h.sessions()).toEqual(["twice"]);
  });
});

describe("ended_at", () => {
  it("is unset while running and says when a stopped or exited agent ended; stopping twice publishes one stopped event", async () => {
    h = await new FleetHarness().start();
    const w = await watchOf("idle");
    const a = (await h.startAgent({ name: "idle", command: "sleep 300", heartbeatIntervalSeconds: 1 })).agent!;
    expect(a.endedAt).toBeUndefined();
    const before = Date.now();
    const stopped = (await stop("idle")).agent!;
    expect(stopped.state).toBe(AGENT_STATE_STOPPED);
    expect(stopped.endedAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    const beat = readFileSync(a.heartbeatFile, "utf8");
    // Past the second the stop happened in, and past the beat a running agent (interval 1 s) would have had.
    await h.beatPast(stopped.endedAt!.getTime() + 1000);
    const again = (await stop("idle")).agent!;
    expect(again.endedAt!.getTime()).toBe(stopped.endedAt!.getTime());
    // The heartbeat is not rewritten either: its time still says when the agent stopped.
    expect(readFileSync(a.heartbeatFile, "utf8")).toBe(beat);
    // Something that must come through after any second stopped event: the removal.
    await remove("idle");
    await waitFor("removed event", () => w.events.some((e) => e.type === E.AGENT_EVENT_TYPE_REMOVED));
    expect(w.events.map((e) => e.type)).toEqual([E.AGENT_EVENT_TYPE_STARTED, E.AGENT_EVENT_TYPE_STOPPED, E.AGENT_EVENT_TYPE_REMOVED]);
    w.stop();

    await h.startAgent({ name: "quits", command: "sh -c 'exit 4'" });
    const exited = await waitFor("exited", async () => {
      const g = await h.getAgent("quits");
      return g.state === AGENT_STATE_EXITED && g;
    });
    expect(exited.endedAt).toBeDefined();
    await h.restart();
    expect((await h.getAgent("quits")).endedAt!.getTime()).toBe(exited.endedAt!.getTime());
  });
});

describe("kept output", () => {
  it("serves the last screen of a stopped agent, also after the service restarted", async () => {
    h = await new FleetHarness().start();
    await runningWith("talker", `sh -c 'for i in $(seq 1 30); do echo line-$i; done; trap "echo got TERM; exit 0" TERM; while :; do sleep 1; done'`, /line-30/);
    await stop("talker");
    expect(h.sessions()).toEqual([]);
    const text = await capture("talker", 100);
    expect(text).toContain("line-1\n");
    expect(text).toMatch(/line-30\n(Terminated\n)?got TERM\n/); // (sh may report the sleep it was waiting for)
    // The pane's death line follows the output at once, not after a screen of blank rows.
    expect(text).toMatch(/got TERM\nPane is dead \(status 0,[^\n]*\)\n$/);
    expect(await capture("talker", 2)).toMatch(/^got TERM\nPane is dead/);
    await h.restart();
    expect(await capture("talker", 100)).toBe(text);
  });

  it("serves an exited agent's screen without blank rows before tmux's 'Pane is dead', also once its session is gone", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "brief", command: "sh -c 'echo hello; echo world; exit 7'" });
    await waitFor("exited", async () => (await h.getAgent("brief")).state === AGENT_STATE_EXITED);
    const live = await capture("brief", 5);
    expect(live).toMatch(/^hello\nworld\nPane is dead \(status 7,[^\n]*\)\n$/);
    h.tmux("kill-session", "-t", "=brief");
    expect(await capture("brief", 5)).toBe(live);
  });

  // Retried: the pipe keeps what is still in the pty, but tmux < 3.7 also drops output it has read and
  // not yet parsed when it reaps the process first (docs/fleet.md); with other files loading both cores
  // one of the twelve lost its line in about one run of four. Without the pipe it failed every run.
  it("keeps the last line of agents that exit right after printing it (tmux < 3.7 drops a dead pane's unread output unless piped)", { retry: 2 }, async () => {
    h = await new FleetHarness().start();
    const names = Array.from({ length: 12 }, (_, i) => `quick${i}`);
    await Promise.all(names.map((name) => h.startAgent({ name, command: `sh -c 'echo last-words-${name}; exit 3'` })));
    for (const name of names) {
      await waitFor(`${name} exited`, async () => (await h.getAgent(name)).state === AGENT_STATE_EXITED);
      expect(await capture(name, 5)).toMatch(new RegExp(`^last-words-${name}\nPane is dead \\(status 3,`));
    }
    // What keeps it: each agent pane is piped from its start, and again after a restart into the same pane.
    expect(h.tmux("display-message", "-p", "-t", "=quick0:", "#{pane_pipe}").trim()).toBe("1");
    await h.startAgent({ name: "quick0", command: "sleep 300" });
    expect(h.tmux("display-message", "-p", "-t", "=quick0:", "#{pane_pipe} #{pane_dead}").trim()).toBe("1 0");
  });

  it("keeps SKEIN_FLEET_KEEP_LINES lines at most, and a new run drops the old run's screen", async () => {
    h = new FleetHarness();
    h.extraEnv.SKEIN_FLEET_KEEP_LINES = "5";
    await h.start();
    await runningWith("many", `sh -c 'seq 1 50; exec sleep 300'`, /^50$/m);
    await stop("many");
    const kept = await capture("many", 100);
    expect(kept.trimEnd().split("\n")).toHaveLength(5);
    expect(kept).toMatch(/^47\n48\n49\n50\nPane is dead/);

    await h.startAgent({ name: "many", command: "sleep 300" });
    expect(existsSync(join(outputDir(), "many.txt"))).toBe(false);
    // Its session killed from outside: nothing could be read, and nothing old passes for it.
    h.tmux("kill-session", "-t", "=many");
    await waitFor("exited", async () => (await h.getAgent("many")).state === AGENT_STATE_EXITED);
    const err = await rejection(capture("many"));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/many is exited .*none of its output was kept/);
  });

  it("raises tmux's history-limit for new panes when SKEIN_FLEET_KEEP_LINES needs more than tmux's default", async () => {
    h = new FleetHarness();
    h.extraEnv.SKEIN_FLEET_KEEP_LINES = "3000";
    await h.start();
    await runningWith("long", `sh -c 'seq 1 2600; exec sleep 300'`, /^2600$/m);
    expect(h.tmux("display-message", "-p", "-t", "=long:", "#{history_limit}").trim()).toBe("3000");
    await stop("long");
    const kept = (await capture("long", 10_000)).trimEnd().split("\n");
    expect(kept[0]).toBe("1");
    expect(kept.at(-2)).toBe("2600");
  });
});
