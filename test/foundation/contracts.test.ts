import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { dynamicClient, repoRoot, startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const buf = `${repoRoot}node_modules/.bin/buf`;

it("passes buf lint (STANDARD)", async () => {
  await expect(run(buf, ["lint"], { cwd: repoRoot })).resolves.toBeDefined();
});

it("makes no breaking change against the contracts that landed on main", async () => {
  const r = await run(buf, ["breaking", "--against", "test/fixtures/contracts-baseline.binpb"], { cwd: repoRoot }).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: `${e.stderr ?? ""} (exit non-zero)` }),
  );
  expect(`${r.stdout}${r.stderr}`).toBe("");
});

let svc: ServiceProcess;
beforeAll(async () => {
  svc = await startService("fleet");
});
afterAll(async () => {
  await svc?.stop();
});

it("speaks the wire contract to a client loaded from the .proto sources alone", async () => {
  const client = dynamicClient("grpc.health.v1.Health", svc.address);
  try {
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      client.check({ service: "skein.fleet.v1.FleetService" }, (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r))),
    );
    expect(res.status).toBe("SERVING");
  } finally {
    client.close();
  }
});
