import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { call, rejection } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, pidAlive, readHeartbeat as heartbeat, sessionPids, waitFor } from "./harness.js";

const { AGENT_STATE_RUNNING, AGENT_STATE_EXITED, AGENT_STATE_STOPPED } = fleet.AgentState;
const E = fleet.AgentEventType;

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

const PROBE = "watch-probe";

/**
 * Follows WatchAgents (of `names`, or of every agent) into an array until the
 * returned stop() is called. Resolves once the stream is known to be
 * subscribed: the start of a probe agent has come through it. The probe is
 * stopped again and its events are left out of `events`.
 */
async function watch(names: string[] = []) {
  const events: fleet.WatchAgentsResponse[] = [];
  const stream = h.client.watchAgents({ names: names.length > 0 ? [...names, PROBE] : [] });
  let ended = false;
  let probed = false;
  stream.on("data", (e: fleet.WatchAgentsResponse) => {
    if (e.agent?.name === PROBE) probed = true;
    else events.push(e);
  });
  stream.on("error", () => (ended = true));
  stream.on("end", () => (ended = true));
  await h.startAgent({ name: PROBE, command: "sleep 300" });
  await waitFor("the watch to be subscribed", () => probed);
  await call(h.client, h.client.stopAgent, { name: PROBE, graceSeconds: 0 });
  return { events, stream, ended: () => ended, stop: () => stream.cancel() };
}

describe("exit detection", () => {
  it("a dead pane becomes exited with its code, in state, heartbeat and events", async () => {
    h = await new FleetHarness().start();
    const w = await watch(["dies"]);
    const a = (await h.startAgent({ name: "dies", command: "sh -c 'sleep 0.5; exit 7'", heartbeatIntervalSeconds: 1 })).agent!;
    const exited = await waitFor("exited", async () => {
      const g = await h.getAgent("dies");
      return g.state === AGENT_STATE_EXITED && g;
    });
    expect(exited.exitStatus).toBe(7);
    const hb = heartbeat(a.heartbeatFile);
    expect(hb).toMatchObject({ pid: String(a.panePid), status: "exited", exit_code: "7", agent: "dies" });
    expect(readFileSync(a.heartbeatFile, "utf8").split("\n")[2]).toBe("status=exited");
    await waitFor("exited event", () => w.events.some((e) => e.type === E.AGENT_EVENT_TYPE_EXITED));
    expect(w.events.map((e) => e.type)).toEqual([E.AGENT_EVENT_TYPE_STARTED, E.AGENT_EVENT_TYPE_EXITED]);
    expect(w.events[1]!.agent!.exitStatus).toBe(7);
    expect(w.events[1]!.message).toContain("status 7");
    // The heartbeat stays "exited": it is not rewritten as ok, also once a beat
    // (interval 1 s) would have been due and the supervisor has run past that.
    await h.beatPast(exited.endedAt!.getTime() + 1000);
    expect(heartbeat(a.heartbeatFile).status).toBe("exited");
    w.stop();
  });

  it("starting an exited agent again replaces its dead session", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "again", command: "sh -c 'exit 3'" });
    await waitFor("exited", async () => (await h.getAgent("again")).state === AGENT_STATE_EXITED);
    const res = await h.startAgent({ name: "again", command: "sleep 300" });
    expect(res.alreadyRunning).toBe(false);
    expect(res.agent!.state).toBe(AGENT_STATE_RUNNING);
    expect(h.sessions()).toEqual(["again"]);
  });
});

describe("StopAgent", () => {
  it("SIGTERMs the pane's processes, SIGKILLs what ignores it, kills the session; nothing survives", async () => {
    h = await new FleetHarness().start();
    // Children in the background, all ignoring SIGTERM: only SIGKILL ends them.
    // The shell itself notes the SIGTERM in term.txt and keeps waiting.
    const a = (await h.startAgent({
      name: "stubborn",
      command: `sh -c 'trap "" TERM; sleep 1000 & sleep 1001 & (trap "" TERM; sleep 1002) & trap "echo TERM >> term.txt" TERM; while :; do wait; done'`,
    })).agent!;
    const pids = await waitFor("children", () => {
      const p = sessionPids(a.panePid);
      return p.length >= 4 && p;
    });
    const stopping = call(h.client, h.client.stopAgent, { name: "stubborn", graceSeconds: 2 });
    await waitFor("the SIGTERM", () => existsSync(join(h.work, "term.txt")));
    // SIGTERM came and went: within the grace period nothing was killed.
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid} of ${pids}`).toBe(true);
    const stopped = await stopping;
    expect(stopped.agent!.state).toBe(AGENT_STATE_STOPPED);
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}: ${pidAlive(pid) ? readFileSync(`/proc/${pid}/stat`, "utf8") : ""} of ${pids}`).toBe(false);
    expect(sessionPids(a.panePid)).toEqual([]);
    expect(h.sessions()).toEqual([]);
    expect(heartbeat(a.heartbeatFile).status).toBe("stopped");
    expect((await h.getAgent("stubborn")).state).toBe(AGENT_STATE_STOPPED);
  });

  it("returns at once when the agent honours SIGTERM", async () => {
    h = await new FleetHarness().start();
    const a = (await h.startAgent({ name: "polite", command: "sleep 1000" })).agent!;
    // A grace period far beyond the test's timeout: only the SIGTERM can have ended it.
    await call(h.client, h.client.stopAgent, { name: "polite", graceSeconds: 3600 });
    expect(pidAlive(a.panePid)).toBe(false);
    expect(h.sessions()).toEqual([]);
  });
});

describe("restart policy", () => {
  it("on-failure restarts with backoff 1 s, 2 s and gives up after max_restarts", async () => {
    h = await new FleetHarness().start();
    const w = await watch(["flaky"]);
    await h.startAgent({
      name: "flaky",
      command: `sh -c 'echo run >> runs.txt; exit 3'`,
      restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE,
      maxRestarts: 2,
    });
    await waitFor("gave up", () => w.events.some((e) => e.type === E.AGENT_EVENT_TYPE_GAVE_UP), 20_000);
    const types = w.events.map((e) => e.type);
    expect(types).toEqual([
      E.AGENT_EVENT_TYPE_STARTED,
      E.AGENT_EVENT_TYPE_EXITED,
      E.AGENT_EVENT_TYPE_RESTARTED,
      E.AGENT_EVENT_TYPE_EXITED,
      E.AGENT_EVENT_TYPE_RESTARTED,
      E.AGENT_EVENT_TYPE_EXITED,
      E.AGENT_EVENT_TYPE_GAVE_UP,
    ]);
    expect(w.events[1]!.message).toContain("restarting in 1s");
    expect(w.events[3]!.message).toContain("restarting in 2s");
    const a = await h.getAgent("flaky");
    expect(a).toMatchObject({ state: AGENT_STATE_EXITED, exitStatus: 3, restarts: 2, gaveUp: true, maxRestarts: 2 });
    expect(readFileSync(join(h.work, "runs.txt"), "utf8")).toBe("run\nrun\nrun\n");
    // The same session and pane were reused for every run.
    expect(h.sessions()).toEqual(["flaky"]);
    w.stop();
  });

  it("restarts in a new session when the agent's session was killed", async () => {
    h = await new FleetHarness().start();
    const a = (await h.startAgent({ name: "gone", command: "sleep 300", restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE })).agent!;
    h.tmux("kill-session", "-t", "=gone");
    const back = await waitFor("the restart", async () => {
      const g = await h.getAgent("gone");
      return g.restarts === 1 && g.state === AGENT_STATE_RUNNING && g;
    });
    expect(back.panePid).not.toBe(a.panePid);
    expect(pidAlive(back.panePid)).toBe(true);
    expect(h.sessions()).toEqual(["gone"]);
  });

  it("always restarts even after a clean exit; never does not", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "loop", command: `sh -c 'echo run >> loop.txt; exit 0'`, restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ALWAYS });
    await h.startAgent({ name: "once", command: `sh -c 'echo run >> once.txt; exit 1'` });
    await waitFor("a restart", async () => (await h.getAgent("loop")).restarts >= 1);
    await waitFor("second run", () => existsSync(join(h.work, "loop.txt")) && readFileSync(join(h.work, "loop.txt"), "utf8") === "run\nrun\n");
    const once = await waitFor("once exited", async () => {
      const g = await h.getAgent("once");
      return g.state === AGENT_STATE_EXITED && g;
    });
    expect(once).toMatchObject({ state: AGENT_STATE_EXITED, restarts: 0, exitStatus: 1 });
    expect(readFileSync(join(h.work, "once.txt"), "utf8")).toBe("run\n");
    // Stop cancels a pending restart: caught between runs, stopped (an exited
    // agent keeps the time it ended), and the service's supervisor seen running
    // past the moment the restart was due: backoff 2^restarts s after that end.
    await waitFor("loop between runs", async () => (await h.getAgent("loop")).state === AGENT_STATE_EXITED);
    const stopped = (await call(h.client, h.client.stopAgent, { name: "loop", graceSeconds: 1 })).agent!;
    const after = stopped.restarts;
    await h.beatPast(stopped.endedAt!.getTime() + 1000 * 2 ** after);
    expect((await h.getAgent("loop")).restarts).toBe(after);
    expect((await h.getAgent("loop")).state).toBe(AGENT_STATE_STOPPED);
  });
});

describe("service restart", () => {
  it("leaves agents running and adopts them; heartbeats resume within one interval", async () => {
    h = await new FleetHarness().start();
    const a = (await h.startAgent({
      name: "survivor",
      command: "sleep 300",
      heartbeatIntervalSeconds: 1,
      restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE,
      env: { KEPT: "1" },
    })).agent!;
    await h.svc!.stop("SIGTERM");
    expect(pidAlive(a.panePid)).toBe(true);
    expect(h.sessions()).toEqual(["survivor"]);
    const before = readFileSync(a.heartbeatFile, "utf8").split("\n")[0]!;
    // No service to ask: wait (on the clock) until the next beat was due, one
    // interval after the last, which was written within the second its ts names.
    const due = Date.parse(before.slice("ts=".length)) + 1000 + 1000;
    await waitFor("the next beat's due time", () => Date.now() > due);
    // No service, no heartbeat: the file's age tells the truth.
    expect(readFileSync(a.heartbeatFile, "utf8").split("\n")[0]).toBe(before);

    await h.start();
    const adopted = await h.getAgent("survivor");
    expect(adopted).toMatchObject({ state: AGENT_STATE_RUNNING, panePid: a.panePid, paneId: a.paneId, restartPolicy: fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE });
    expect(adopted.startedAt!.getTime()).toBe(a.startedAt!.getTime());
    await waitFor("a fresh heartbeat", () => readFileSync(a.heartbeatFile, "utf8").split("\n")[0] !== before, 2500);
    // Supervision resumed: a kill is noticed and reported with the signal.
    process.kill(a.panePid, "SIGKILL");
    const dead = await waitFor("exited", async () => {
      const g = await h.getAgent("survivor");
      return g.state !== AGENT_STATE_RUNNING && g;
    });
    expect(dead.exitStatus).toBe(128 + 9);
  });

  it("adopts sessions it did not start", async () => {
    h = await new FleetHarness().start();
    await h.svc!.stop("SIGTERM");
    h.tmux("new-session", "-d", "-s", "handmade", "-c", h.work, "sleep 300");
    await h.start();
    const a = await h.getAgent("handmade");
    expect(a.state).toBe(AGENT_STATE_RUNNING);
    expect(a.workdir).toBe(h.work);
    await waitFor("heartbeat", () => existsSync(join(h.hbDir, "handmade.hb")));
    expect((await h.startAgent({ name: "handmade", command: "sleep 1" })).alreadyRunning).toBe(true);
  });
});

describe("WatchAgents", () => {
  it("reports an adopted event when StartAgent takes over a session made by hand", async () => {
    h = await new FleetHarness().start();
    const w = await watch(["handmade"]);
    h.tmux("new-session", "-d", "-s", "handmade", "-c", h.work, "sleep 300");
    expect((await h.startAgent({ name: "handmade", command: "sleep 1" })).alreadyRunning).toBe(true);
    await waitFor("adopted event", () => w.events.length > 0);
    expect(w.events.map((e) => e.type)).toEqual([E.AGENT_EVENT_TYPE_ADOPTED]);
    expect(w.events[0]!.agent).toMatchObject({ name: "handmade", state: AGENT_STATE_RUNNING, workdir: h.work });
    w.stop();
  });

  it("ends when the service begins to drain", async () => {
    h = await new FleetHarness().start();
    const w = await watch();
    await h.startAgent({ name: "w", command: "sleep 300" });
    await waitFor("started event", () => w.events.length === 1);
    await h.svc!.stop("SIGTERM");
    await waitFor("stream end", () => w.ended(), 5000);
  });
});

describe("SendInput and CaptureOutput", () => {
  it("types text literally, presses Enter separately, and captures the pane", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "repl", command: "cat" });
    const text = `hello; $(echo no) #{pane_id} 'q' -x;`;
    await call(h.client, h.client.sendInput, { name: "repl", text, pressEnter: true });
    const out = await waitFor("echo from cat", async () => {
      const r = await call(h.client, h.client.captureOutput, { name: "repl", lines: 20 });
      return r.text.split("\n").filter((l) => l === text).length >= 2 && r.text;
    });
    expect(out).toContain(text);
    await call(h.client, h.client.sendInput, { name: "repl", text: "-n no enter", pressEnter: false });
    await waitFor("typed", async () => (await call(h.client, h.client.captureOutput, { name: "repl", lines: 0 })).text.includes("-n no enter"));
    const err = await rejection(call(h.client, h.client.captureOutput, { name: "repl", lines: 10_001 }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("lines:");
  });
});
