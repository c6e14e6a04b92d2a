import { mkdirSync, writeFileSync } from "node:fs";
import { fleetSocketLockPath, tmuxSocketDir } from "@skein/host";
import { startService } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { FleetHarness } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

it("refuses to start a second fleet service on a socket another one supervises", async () => {
  h = await new FleetHarness().start();
  const second = await startService("fleet", h.env(), { expectExit: true });
  expect((await second.exited).code).toBe(2);
  expect(second.output.join("\n")).toContain(`already supervises tmux socket ${h.socket}`);
  expect(h.svc!.proc.exitCode).toBeNull();
});

it("takes over the lock of a service that is gone (killed with -9)", async () => {
  h = new FleetHarness();
  // What a killed owner leaves behind: a lock naming a pid that no longer runs.
  mkdirSync(tmuxSocketDir(), { recursive: true, mode: 0o700 });
  writeFileSync(fleetSocketLockPath(h.socket), `${JSON.stringify({ pid: 2 ** 22 + 4321, startTicks: 1 })}\n`);
  await h.start();
  expect(h.svc!.port).toBeGreaterThan(0);
});
