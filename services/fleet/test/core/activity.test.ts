import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readHeartbeat } from "../harness.js";
import { FleetFixture } from "./fleet-fixture.js";

// One Fleet for the file, idle after 1 s without output (the smallest setting).
let f: FleetFixture;
beforeAll(async () => {
  f = await new FleetFixture({ SKEIN_FLEET_IDLE_AFTER_S: "1" }).open();
});
afterAll(() => f?.close());

/** Prints until the test creates the file `done` (in its workdir), then `then` (a shell command). */
const busyUntil = (done: string, then: string) => `sh -c 'i=0; while [ ! -e ${done} ]; do echo "step $i"; i=$((i+1)); sleep 0.2; done; ${then}'`;

describe("Fleet in process: activity", () => {
  it("working while output changes, idle once it stops; input makes it working at once; the heartbeat follows", async () => {
    // Silent once done, on a bare read nobody's prompt table knows.
    const { agent } = await f.start("busy", busyUntil("busy.done", "read line; echo got; read last"));
    expect(agent.activity).toBe("unknown");
    await f.agentWhere("busy", "working", (a) => a.activity === "working");
    writeFileSync(join(f.work, "busy.done"), "");
    const idle = await f.agentWhere("busy", "idle", (a) => a.activity === "idle");
    expect(idle.waitingFor).toBe("");
    expect(readHeartbeat(agent.spec.heartbeatFile).activity).toBe("idle");

    await f.fleet.sendInput("busy", "go", true);
    expect(f.fleet.get("busy").activity).toBe("working");
    await f.agentWhere("busy", "idle again", (a) => a.activity === "idle");
    const reported = f.eventsOf("busy", "activity").map((e) => e.agent.activity);
    expect(reported).toEqual(["working", "idle", "working", "idle"]);
  });

  it("an agent that ends does nothing: its activity is unknown from the moment it ended", async () => {
    await f.start("brief", busyUntil("brief.done", "exit 0"));
    await f.agentWhere("brief", "working", (a) => a.activity === "working");
    writeFileSync(join(f.work, "brief.done"), "");
    const ended = await f.agentWhere("brief", "exited", (a) => a.state === "exited");
    expect(ended.activity).toBe("unknown");
    expect(ended.activitySince).toEqual(ended.endedAt);
    expect(readHeartbeat(ended.spec.heartbeatFile)).toMatchObject({ status: "exited", activity: "unknown" });
  });
});
