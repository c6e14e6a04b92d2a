import { status } from "@grpc/grpc-js";
import { health } from "@skein/proto";
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

  it("rejects other RPCs without the right bearer token, accepts them with it", async () => {
    svc = await startService("session", { SKEIN_AUTH_TOKEN: TOKEN });
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

  it("refuses a bad setting with a message naming the variable", async () => {
    svc = await startService("session", { SKEIN_SHUTDOWN_GRACE_MS: "soon" }, { expectExit: true });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output.join("\n")).toContain("SKEIN_SHUTDOWN_GRACE_MS");
  });
});
