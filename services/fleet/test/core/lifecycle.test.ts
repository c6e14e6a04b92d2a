import { existsSync } from "node:fs";
import { FailedPreconditionError, NotFoundError } from "@skein/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pidAlive, readHeartbeat, waitFor } from "../harness.js";
import { FleetFixture } from "./fleet-fixture.js";

// One Fleet for the file: each test uses its own agent names.
let f: FleetFixture;
beforeAll(async () => {
  f = await new FleetFixture().open();
});
afterAll(() => f?.close());

describe("Fleet in process: lifecycle rules", () => {
  it("start is idempotent by name: a second start of a running agent reports it and launches nothing", async () => {
    const first = await f.start("idem", "sleep 300");
    expect(first.alreadyRunning).toBe(false);
    expect(first.agent.state).toBe("running");
    expect(pidAlive(first.agent.panePid)).toBe(true);
    const again = await f.start("idem", "sleep 999");
    expect(again.alreadyRunning).toBe(true);
    expect(again.agent).toMatchObject({ paneId: first.agent.paneId, panePid: first.agent.panePid, spec: { command: "sleep 300" } });
    await f.eventOf("idem", "started");
    expect(f.eventsOf("idem").map((e) => e.type)).toEqual(["started"]);
    expect(readHeartbeat(first.agent.spec.heartbeatFile)).toMatchObject({ status: "ok", pid: String(first.agent.panePid) });
  });

  it("a dead pane becomes exited with its code; the heartbeat says so first; no restart under policy never", async () => {
    await f.start("ends", "sh -c 'exit 7'");
    const exited = await f.agentWhere("ends", "exited", (a) => a.state === "exited");
    expect(exited).toMatchObject({ exitStatus: 7, restartDueAt: undefined, gaveUp: false, activity: "unknown" });
    expect(exited.endedAt).toBeInstanceOf(Date);
    expect(readHeartbeat(exited.spec.heartbeatFile)).toMatchObject({ status: "exited" });
    expect((await f.eventOf("ends", "exited")).agent.state).toBe("exited");
  });

  it("stop ends the process group and reports STOPPED once; stopping again changes nothing", async () => {
    const { agent } = await f.start("halts", "sleep 300");
    const stopped = await f.fleet.stop("halts", 5);
    expect(stopped.state).toBe("stopped");
    expect(pidAlive(agent.panePid)).toBe(false);
    expect(readHeartbeat(agent.spec.heartbeatFile).status).toBe("stopped");
    const again = await f.fleet.stop("halts", 5);
    expect(again.endedAt).toEqual(stopped.endedAt);
    await f.eventOf("halts", "stopped");
    expect(f.eventsOf("halts").map((e) => e.type)).toEqual(["started", "stopped"]);
    // Started again, it runs anew.
    const restarted = await f.start("halts", "sleep 300");
    expect(restarted).toMatchObject({ alreadyRunning: false, agent: { state: "running" } });
    await f.fleet.stop("halts", 5);
  });

  it("remove refuses a running agent and forgets a stopped one: its record, heartbeat file and kept screen", async () => {
    const { agent } = await f.start("gone", "sh -c 'echo last words; sleep 300'");
    await expect(f.fleet.remove("gone")).rejects.toBeInstanceOf(FailedPreconditionError);
    await waitFor("its output on screen", async () => (await f.fleet.capture("gone", 10)).includes("last words"));
    await f.fleet.stop("gone", 5);
    expect(await f.fleet.capture("gone", 10)).toContain("last words");
    await f.fleet.remove("gone");
    expect(() => f.fleet.get("gone")).toThrow(NotFoundError);
    expect(existsSync(agent.spec.heartbeatFile)).toBe(false);
    expect(f.fleet.list().some((a) => a.spec.name === "gone")).toBe(false);
    await f.eventOf("gone", "removed");
    expect(f.eventsOf("gone").map((e) => e.type)).toEqual(["started", "stopped", "removed"]);
    await expect(f.fleet.remove("gone")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("on-failure restarts after the backoff, then gives up after max_restarts", async () => {
    await f.start("flaky", "sh -c 'exit 3'", { restartPolicy: "on-failure", maxRestarts: 1 });
    const first = await f.eventOf("flaky", "exited");
    expect(first.agent.restartDueAt).toBeInstanceOf(Date);
    expect(first.message).toMatch(/restarting in 1s/);
    const restarted = await f.eventOf("flaky", "restarted");
    expect(restarted.agent).toMatchObject({ state: "running", restarts: 1 });
    // Not before it was due.
    expect(restarted.at.getTime()).toBeGreaterThanOrEqual(first.agent.restartDueAt!.getTime());
    await f.eventOf("flaky", "gave-up");
    expect(f.fleet.get("flaky")).toMatchObject({ state: "exited", gaveUp: true, restarts: 1, restartDueAt: undefined });
    expect(f.eventsOf("flaky").map((e) => e.type)).toEqual(["started", "exited", "restarted", "exited", "gave-up"]);
  });

  it("a stop cancels a pending restart: the moment it was due passes without one", async () => {
    await f.start("calm", "sh -c 'exit 4'", { restartPolicy: "on-failure" });
    const due = (await f.eventOf("calm", "exited")).agent.restartDueAt!;
    await f.fleet.stop("calm", 1);
    expect(f.fleet.get("calm")).toMatchObject({ state: "stopped", restartDueAt: undefined });
    // Supervisor ticks after the due time prove the moment passed (the restart timer would have fired first).
    await f.ticksPass(2);
    await f.agentWhere("calm", "past the due time", () => Date.now() > due.getTime() + 250, 5_000);
    await f.ticksPass(2);
    expect(f.eventsOf("calm", "restarted")).toEqual([]);
    expect(f.fleet.get("calm").state).toBe("stopped");
  });
});
