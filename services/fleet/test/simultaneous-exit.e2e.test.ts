import { afterEach, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

// tmux 3.3a can miss a pane's SIGCHLD and then never fills in
// #{pane_dead_status} (the pane stays a zombie); the supervisor must still
// report each code. Without its SIGCHLD nudge this pattern loses statuses.
it("reports the exit code of short-lived agents started beside a running one", async () => {
  h = await new FleetHarness().start();
  // The pattern that lost statuses: a long-running agent, then short-lived ones.
  await h.startAgent({ name: "runs", command: "sleep 300" });
  const names = ["e1", "e2", "e3"];
  for (const [i, name] of names.entries()) await h.startAgent({ name, command: `sh -c 'sleep 0.3; exit ${10 + i}'` });
  for (const [i, name] of names.entries()) {
    const a = await waitFor(`${name} to exit`, async () => {
      const got = await h.getAgent(name);
      return got.exitStatus !== undefined ? got : undefined;
    }, 20_000);
    expect(a.exitStatus, name).toBe(10 + i);
  }
});
