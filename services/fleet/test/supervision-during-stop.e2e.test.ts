import { readFileSync } from "node:fs";
import { fleet } from "@skein/proto";
import { call } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { FleetHarness } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

// A stop holds its agent's lock for the whole grace period; supervision of
// every other agent must go on meanwhile.
it("keeps heartbeating the other agents while one is being stopped", async () => {
  h = await new FleetHarness().start();
  // Ignores SIGTERM: the stop waits out its whole grace period, then SIGKILLs.
  await h.startAgent({ name: "slow-to-stop", command: `sh -c 'trap "" TERM; sleep 300'`, heartbeatIntervalSeconds: 1 });
  const b = (await h.startAgent({ name: "bystander", command: "sleep 300", heartbeatIntervalSeconds: 1 })).agent!;
  let stopping = true;
  const stopped = call(h.client, h.client.stopAgent, { name: "slow-to-stop", graceSeconds: 5 }).finally(() => (stopping = false));
  const beats = new Set<string>();
  while (stopping) {
    beats.add(readFileSync(b.heartbeatFile, "utf8").split("\n")[0]!);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await stopped).agent!.state).toBe(fleet.AgentState.AGENT_STATE_STOPPED);
  // A beat a second through the grace period, not one frozen timestamp.
  expect(beats.size, [...beats].join(", ")).toBeGreaterThanOrEqual(3);
  expect((await h.getAgent("bystander")).state).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
});
