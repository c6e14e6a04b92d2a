import { status } from "@grpc/grpc-js";
import { health } from "@skein/proto";
import { call, connect, rejection } from "@skein/testkit";
import { expect, it } from "vitest";
import { forEachService } from "./each-service.js";

const { SERVING } = health.HealthCheckResponse_ServingStatus;

forEachService("health of the %s service", (current, name, serviceName) => {
  it("reports the overall status and one per service", async () => {
    const c = connect(health.HealthClient, current().address);
    expect((await call(c, c.check, { service: "" })).status).toBe(SERVING);
    expect((await call(c, c.check, { service: serviceName })).status).toBe(SERVING);
    const list = await call(c, c.list, {});
    expect(Object.keys(list.statuses).sort()).toEqual(["", serviceName].sort());
  });

  it("answers NOT_FOUND for a service it does not host", async () => {
    const c = connect(health.HealthClient, current().address);
    const err = await rejection(call(c, c.check, { service: "no.Such" }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain("no.Such");
  });

  it("logs one line per call with request id, method, status code and duration", async () => {
    const c = connect(health.HealthClient, current().address);
    await call(c, c.check, { service: "" });
    const line = await current().waitForLog((l) => l.msg === "call finished" && l.method === "/grpc.health.v1.Health/Check");
    expect(line).toMatchObject({ code: "OK", service: name });
    expect(typeof line.durationMs).toBe("number");
    expect(typeof line.requestId).toBe("string");
  });
});

