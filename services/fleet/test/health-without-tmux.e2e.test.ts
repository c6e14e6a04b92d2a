import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet, health } from "@skein/proto";
import { call, closeClients, connect, rejection, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { TMUX, waitFor } from "./harness.js";

const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;
const SERVICE = "skein.fleet.v1.FleetService";

let svc: ServiceProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop("SIGKILL");
  svc = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("says NOT_SERVING (fleet and overall) while no tmux is on its PATH, logs why once, and recovers when tmux appears", async () => {
  dir = mkdtempSync(join(tmpdir(), "skein-no-tmux-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  // The service is started by node's absolute path: its PATH holds only this empty directory.
  svc = await startService("fleet", { PATH: bin });
  const h = connect(health.HealthClient, svc.address);
  expect((await call(h, h.check, { service: SERVICE })).status).toBe(NOT_SERVING);
  expect((await call(h, h.check, { service: "" })).status).toBe(NOT_SERVING);

  const reasons = svc.logs.filter((l) => /tmux is not on the fleet service's PATH/.test(l.msg ?? ""));
  expect(reasons).toHaveLength(1);
  expect(reasons[0]).toMatchObject({ level: 50, path: bin });
  // That one line is the whole story: no second warning (with a stack) about tmux's environment.
  expect(svc.logs.filter((l) => (l.level ?? 0) >= 40 && l !== reasons[0]).map((l) => l.msg)).toEqual([]);

  // What an operator would see on trying anyway: a clear refusal, not a crash.
  const f = connect(fleet.FleetServiceClient, svc.address);
  const err = await rejection(call(f, f.startAgent, fleet.StartAgentRequest.fromPartial({ name: "a", workdir: dir, command: "sleep 1" })));
  expect(err.code).toBe(status.FAILED_PRECONDITION);
  expect(err.details).toContain("tmux is not installed or not on the fleet service's PATH");

  symlinkSync(TMUX, join(bin, "tmux"));
  await waitFor("SERVING once tmux is on PATH", async () => (await call(h, h.check, { service: SERVICE })).status === SERVING, 15_000);
  expect((await call(h, h.check, { service: "" })).status).toBe(SERVING);
  await svc.waitForLog((l) => l.msg === "tmux found on PATH again; serving");
  expect(svc.logs.filter((l) => /tmux is not on the fleet service's PATH/.test(l.msg ?? ""))).toHaveLength(1);
});

it("is SERVING with tmux on its PATH", async () => {
  svc = await startService("fleet");
  const h = connect(health.HealthClient, svc.address);
  expect((await call(h, h.check, { service: SERVICE })).status).toBe(SERVING);
  expect((await call(h, h.check, { service: "" })).status).toBe(SERVING);
});
