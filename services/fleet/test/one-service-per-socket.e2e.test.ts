import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
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

it("gives the socket back when serving fails after the lock was taken (metrics port taken)", async () => {
  h = new FleetHarness();
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
  try {
    const port = (taken.address() as AddressInfo).port;
    const failed = await startService("fleet", { ...h.env(), SKEIN_FLEET_METRICS_ADDR: `127.0.0.1:${port}` }, { expectExit: true });
    expect((await failed.exited).code).not.toBe(0);
    expect(failed.output.join("\n")).toContain(String(port));
    // Undone: the lock is gone, so the next service on this socket starts at once.
    expect(existsSync(fleetSocketLockPath(h.socket))).toBe(false);
    await h.start();
    expect(h.svc!.port).toBeGreaterThan(0);
  } finally {
    taken.close();
  }
});
