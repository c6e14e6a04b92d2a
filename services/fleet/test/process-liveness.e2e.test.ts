import { existsSync, readFileSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { haveProgram, holdReaping, rejection, tmuxServerPid, type Fault } from "@skein/testkit";
import { sleep } from "@skein/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { STOP_POLL_MS } from "../src/stopping.js";
import { FleetHarness, pidAlive, readHeartbeat, sessionPids, waitFor } from "./harness.js";

const { AGENT_STATE_RUNNING, AGENT_STATE_STOPPED, AGENT_STATE_UNKNOWN, AGENT_STATE_EXITED } = fleet.AgentState;

let h: FleetHarness;
let fault: Fault | undefined;
afterEach(async () => {
  await fault?.release();
  fault = undefined;
  await h?.cleanup();
});

/** In /proc at all, zombie or not: a zombie is a process nobody has reaped yet. */
const inProcTable = (pid: number) => existsSync(`/proc/${pid}`);
const procState = (pid: number) => (inProcTable(pid) ? readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0] : undefined);

// Ignores SIGHUP, like a daemonising agent: it survives the hangup of its pane, and so does its child.
const HUP_PROOF = `sh -c 'trap "" HUP; sleep 1000 & exec sleep 300'`;

describe("liveness follows the process", () => {
  it("an agent whose session was killed but whose process lives on is unknown, and StopAgent ends its process group", async () => {
    h = await new FleetHarness().start();
    // Keeps the tmux server up after the agent's session is gone: the orphan stays its child.
    await h.startAgent({ name: "bystander", command: "sleep 300" });
    const a = (await h.startAgent({ name: "stray", command: HUP_PROOF, heartbeatIntervalSeconds: 1 })).agent!;
    const pids = await waitFor("the agent and its child", () => {
      const p = sessionPids(a.panePid);
      return p.length >= 2 && p;
    });
    h.tmux("kill-session", "-t", "=stray");
    expect(h.sessions()).toEqual(["bystander"]);
    const seen = await waitFor("the agent to be reported not running", async () => {
      const g = await h.getAgent("stray");
      return g.state !== AGENT_STATE_RUNNING && g;
    });
    expect(seen.state).toBe(AGENT_STATE_UNKNOWN);
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(true);
    await waitFor("status=unknown in the heartbeat", () => readHeartbeat(a.heartbeatFile).status === "unknown");
    expect(readHeartbeat(a.heartbeatFile).pid).toBe(String(a.panePid));

    // Starting it again would run a second copy beside the one that lost its pane.
    const again = await rejection(h.startAgent({ name: "stray", command: "sleep 300" }));
    expect(again.code).toBe(status.FAILED_PRECONDITION);
    expect(again.details).toContain(String(a.panePid));
    expect(h.sessions()).toEqual(["bystander"]);

    const stopped = await h.stopAgent("stray", 1);
    expect(stopped.state).toBe(AGENT_STATE_STOPPED);
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid} after StopAgent`).toBe(false);
    // The tmux server (its parent) has reaped it: nothing of it is left in /proc.
    expect(inProcTable(a.panePid)).toBe(false);
    expect(readHeartbeat(a.heartbeatFile).status).toBe("stopped");
    expect((await h.getAgent("bystander")).state).toBe(AGENT_STATE_RUNNING);
  });

  it("reports the stray process as exited once it ends by itself, and keeps it unknown across a service restart", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "bystander", command: "sleep 300" });
    const a = (await h.startAgent({ name: "stray", command: `sh -c 'trap "" HUP; exec sleep 300'`, heartbeatIntervalSeconds: 1 })).agent!;
    // Not before the shell has set the trap (it has once it exec'd sleep): a hangup before it would end the agent.
    await waitFor("the trap set", () => readFileSync(`/proc/${a.panePid}/comm`, "utf8").trim() === "sleep");
    h.tmux("kill-session", "-t", "=stray");
    await waitFor("unknown", async () => (await h.getAgent("stray")).state === AGENT_STATE_UNKNOWN);
    await h.restart();
    const adopted = await h.getAgent("stray");
    expect(adopted.state).toBe(AGENT_STATE_UNKNOWN);
    await waitFor("status=unknown after the restart", () => readHeartbeat(a.heartbeatFile).status === "unknown");
    process.kill(a.panePid, "SIGKILL");
    const ended = await waitFor("exited", async () => {
      const g = await h.getAgent("stray");
      return g.state === AGENT_STATE_EXITED && g;
    });
    expect(ended.panePid).toBe(a.panePid);
    expect(readHeartbeat(a.heartbeatFile).status).toBe("exited");
  });
});

// The fault needs strace: without it this skips; npm test's preflight says what to install.
describe.skipIf(!haveProgram("strace", "-V"))("StopAgent waits for the reaping", () => {
  it("does not report STOPPED while the agent's process is an unreaped zombie of the tmux server", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "bystander", command: "sleep 300" });
    const a = (await h.startAgent({ name: "reaped", command: "sleep 300" })).agent!;
    // tmux misses the SIGCHLD of the agent's exit (as tmux 3.3a does when exits coincide).
    fault = await holdReaping(tmuxServerPid(h.socket)!);
    let done = false;
    const stopping = h.stopAgent("reaped", 5).finally(() => (done = true));
    await waitFor("the agent to be a zombie", () => procState(a.panePid) === "Z");
    // The zombie outlives the stop unless someone makes tmux reap it: three of
    // the stop's reap polls (each nudging tmux with a SIGCHLD) pass without it.
    // Nothing outside the service sees those polls, so this waits on their interval.
    await sleep(3 * STOP_POLL_MS);
    expect(done).toBe(false);
    await fault.release();
    fault = undefined;
    expect((await stopping).state).toBe(AGENT_STATE_STOPPED);
    expect(inProcTable(a.panePid)).toBe(false);
    expect(h.sessions()).toEqual(["bystander"]);
  });
});
