import { status } from "@grpc/grpc-js";
import { fleet, health } from "@skein/proto";
import { call, closeClients, connect, md, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { describeServer } from "./reflection-client.js";

const TOKEN = "s3cret-token-for-tests";
let svc: ServiceProcess | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop();
  svc = undefined;
});

describe("with SKEIN_AUTH_TOKEN set", () => {
  it("lets health through without a token", async () => {
    svc = await startService("fleet", { SKEIN_AUTH_TOKEN: TOKEN });
    const c = connect(health.HealthClient, svc.address);
    expect((await call(c, c.check, { service: "" })).status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
  });

  it("serves reflection without a token, so grpcurl resolves health (and any method) as the README writes it", async () => {
    svc = await startService("fleet", { SKEIN_AUTH_TOKEN: TOKEN });
    // grpcurl first resolves the method through reflection, then calls it.
    const described = await describeServer(svc.address, "v1");
    expect(described.registry.getService("grpc.health.v1.Health")).toBeDefined();
    expect((await describeServer(svc.address, "v1alpha")).services).toContain("skein.fleet.v1.FleetService");
    const h = connect(health.HealthClient, svc.address);
    const checked = await call<health.HealthCheckRequest, health.HealthCheckResponse>(h, h.check, { service: "" });
    expect(checked.status).toBe(health.HealthCheckResponse_ServingStatus.SERVING);
    // The domain is not public.
    const f = connect(fleet.FleetServiceClient, svc.address);
    await expect(call(f, f.listAgents, {})).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const listed = await call<fleet.ListAgentsRequest, fleet.ListAgentsResponse>(f, f.listAgents, {}, md({ token: TOKEN }));
    expect(listed.agents).toEqual([]);
  });

  it("with SKEIN_REFLECTION_AUTH=token, reflection needs the token too", async () => {
    svc = await startService("session", { SKEIN_AUTH_TOKEN: TOKEN, SKEIN_REFLECTION_AUTH: "token" });
    await expect(describeServer(svc.address, "v1")).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    await expect(describeServer(svc.address, "v1", md({ token: "wrong" }))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: "invalid bearer token",
    });
    const ok = await describeServer(svc.address, "v1", md({ token: TOKEN }));
    expect(ok.services).toContain("skein.session.v1.SessionService");
    expect(svc.logs.some((l) => JSON.stringify(l).includes(TOKEN)), "the token never reaches the log").toBe(false);
  });
});

describe("binding", () => {
  it("refuses a non-loopback address without a token, saying why", async () => {
    svc = await startService("fleet", { SKEIN_FLEET_ADDR: "0.0.0.0:0" }, { expectExit: true });
    const exit = await svc.exited;
    expect(exit.code).toBe(2);
    const said = svc.output.join("\n");
    expect(said).toContain("0.0.0.0:0");
    expect(said).toContain("SKEIN_AUTH_TOKEN");
  });

  it("listens on a non-loopback address when a token is set", async () => {
    svc = await startService("fleet", { SKEIN_FLEET_ADDR: "0.0.0.0:0", SKEIN_AUTH_TOKEN: TOKEN });
    expect(svc.port).toBeGreaterThan(0);
  });

  it.each([[""], ["   "], ["\t"]])("refuses SKEIN_AUTH_TOKEN=%j (set but empty): exit 2, one line, auth is never silently off", async (token) => {
    svc = await startService("fleet", { SKEIN_AUTH_TOKEN: token }, { expectExit: true });
    expect((await svc.exited).code).toBe(2);
    expect(svc.logs).toEqual([]);
    expect(svc.output).toHaveLength(1);
    expect(svc.output[0]).toMatch(/^skein fleet: SKEIN_AUTH_TOKEN=".*" is set but empty: /);
  });

  it("refuses a bad setting with a message naming the variable", async () => {
    svc = await startService("session", { SKEIN_SHUTDOWN_GRACE_MS: "soon" }, { expectExit: true });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output.join("\n")).toContain("SKEIN_SHUTDOWN_GRACE_MS");
  });
});
