import { status } from "@grpc/grpc-js";
import { health } from "@skein/proto";
import { call, closeClients, connect, rejection, startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const { SERVING } = health.HealthCheckResponse_ServingStatus;

describe.each([
  ["session", "skein.session.v1.SessionService"],
  ["fleet", "skein.fleet.v1.FleetService"],
] as const)("health of the %s service", (name, serviceName) => {
  let svc: ServiceProcess;
  beforeAll(async () => {
    svc = await startService(name);
  });
  afterAll(async () => {
    closeClients();
    await svc?.stop();
  });

  it("reports the overall status and one per service", async () => {
    const c = connect(health.HealthClient, svc.address);
    expect((await call(c, c.check, { service: "" })).status).toBe(SERVING);
    expect((await call(c, c.check, { service: serviceName })).status).toBe(SERVING);
    const list = await call(c, c.list, {});
    expect(Object.keys(list.statuses).sort()).toEqual(["", serviceName].sort());
  });

  it("answers NOT_FOUND for a service it does not host", async () => {
    const c = connect(health.HealthClient, svc.address);
    const err = await rejection(call(c, c.check, { service: "no.Such" }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain("no.Such");
  });

  it("logs one line per call with request id, method, status code and duration", async () => {
    const c = connect(health.HealthClient, svc.address);
    await call(c, c.check, { service: "" });
    const line = await svc.waitForLog((l) => l.msg === "call finished" && l.method === "/grpc.health.v1.Health/Check");
    expect(line).toMatchObject({ code: "OK", service: name });
    expect(typeof line.durationMs).toBe("number");
    expect(typeof line.requestId).toBe("string");
  });
});

