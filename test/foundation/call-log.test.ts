import { closeClients, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { openReflection } from "./reflection-client.js";

let svc: ServiceProcess | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop();
  svc = undefined;
});

const REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

it("reflection streams that end normally are logged at debug, never as CANCELLED at info", async () => {
  svc = await startService("session");
  const ended = () => svc!.logs.filter((l) => l.method === REFLECTION && /^call (finished|closed by client)$/.test(String(l.msg)));
  // grpcurl's way: ask, read the answer, then cancel the stream.
  const r = openReflection(svc.address, "v1");
  expect((await r.ask({ $case: "listServices", value: "*" }))?.$case).toBe("listServicesResponse");
  r.cancel();
  await svc.waitForLog(() => ended().length === 1);
  expect(ended()[0]!.level).toBe(20);

  // The polite way: half-close; the stream then ends OK.
  const polite = openReflection(svc.address, "v1");
  await polite.ask({ $case: "listServices", value: "*" });
  polite.close();
  await svc.waitForLog(() => ended().length === 2);
  expect(ended()[1]).toMatchObject({ level: 20, code: "OK", msg: "call finished" });

  expect(svc.logs.filter((l) => l.method === REFLECTION && (l.code === "CANCELLED" || (l.level ?? 0) >= 30))).toEqual([]);
});
