import { health } from "@skein/proto";
import { closeClients, connect, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { openReflection } from "./reflection-client.js";

const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;
let svc: ServiceProcess | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop("SIGKILL");
  svc = undefined;
});

it("ends an open watch stream with NOT_SERVING and exits 0 well within the grace period", async () => {
  svc = await startService("session", { SKEIN_SHUTDOWN_GRACE_MS: "60000" });
  const c = connect(health.HealthClient, svc.address);
  const stream = c.watch({ service: "skein.session.v1.SessionService" });
  const seen: number[] = [];
  const ended = new Promise<string>((resolve) => {
    stream.on("data", (r: health.HealthCheckResponse) => seen.push(r.status));
    stream.on("end", () => resolve("end"));
    stream.on("error", (e) => resolve(`error ${String(e)}`));
  });
  await new Promise((resolve) => stream.once("data", resolve));
  expect(seen).toEqual([SERVING]);
  svc.proc.kill("SIGTERM");
  expect(await ended).toBe("end");
  expect(seen).toEqual([SERVING, NOT_SERVING]);
  expect((await svc.exited).code).toBe(0);
  // Finished on its own: the 60 s grace period never had to end anything.
  expect(svc.logs.some((l) => l.msg === "grace period over; ending remaining calls")).toBe(false);
});

it("ends calls still open when the grace period is over, then exits 0", async () => {
  svc = await startService("fleet", { SKEIN_SHUTDOWN_GRACE_MS: "300" });
  const r = openReflection(svc.address, "v1");
  await r.ask({ $case: "listServices", value: "" });
  // The client keeps its reflection stream open.
  svc.proc.kill("SIGTERM");
  expect((await svc.exited).code).toBe(0);
  expect(svc.logs.some((l) => l.msg === "grace period over; ending remaining calls")).toBe(true);
  r.close();
});

it("refuses new calls once shutdown began (health says NOT_SERVING first)", async () => {
  svc = await startService("fleet", { SKEIN_SHUTDOWN_GRACE_MS: "2000" });
  const r = openReflection(svc.address, "v1");
  await r.ask({ $case: "listServices", value: "" });
  svc.proc.kill("SIGTERM");
  await svc.waitForLog((l) => l.msg === "shutting down");
  const c = connect(health.HealthClient, svc.address);
  const res = await new Promise<unknown>((resolve) => c.check({ service: "" }, (err, ok) => resolve(err ?? ok)));
  expect(res).toBeInstanceOf(Error);
  r.close();
  expect((await svc.exited).code).toBe(0);
});
