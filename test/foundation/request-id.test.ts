import { Metadata } from "@grpc/grpc-js";
import { health } from "@skein/proto";
import { closeClients, connect, md, startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";

let svc: ServiceProcess;
beforeAll(async () => {
  svc = await startService("session");
});
afterAll(async () => {
  closeClients();
  await svc?.stop();
});

/** Calls Health/Check and returns the initial metadata the server sent. */
function checkWithMetadata(metadata: Metadata): Promise<Metadata> {
  const c = connect(health.HealthClient, svc.address);
  return new Promise((resolve, reject) => {
    const callObj = c.check({ service: "" }, metadata, (err) => err && reject(err));
    callObj.on("metadata", resolve);
  });
}

it("echoes the caller's x-request-id and logs it", async () => {
  const got = await checkWithMetadata(md({ requestId: "req-abc-123" }));
  expect(got.get("x-request-id")).toEqual(["req-abc-123"]);
  await svc.waitForLog((l) => l.requestId === "req-abc-123" && l.msg === "call finished");
});

it("generates a request id when the caller sends none", async () => {
  const got = await checkWithMetadata(new Metadata());
  const id = got.get("x-request-id")[0];
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  await svc.waitForLog((l) => l.requestId === id);
});

it("replaces a request id that is not safe to log", async () => {
  const got = await checkWithMetadata(md({ requestId: "bad id with spaces!" }));
  expect(got.get("x-request-id")[0]).toMatch(/^[0-9a-f-]{36}$/);
});
