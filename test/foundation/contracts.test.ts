import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { dynamicClient, repoRoot, startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const buf = `${repoRoot}node_modules/.bin/buf`;

it("passes buf lint (STANDARD)", async () => {
  await expect(run(buf, ["lint"], { cwd: repoRoot })).resolves.toBeDefined();
});

/**
 * The contracts as landed on main are recorded in test/fixtures/contracts-baseline.binpb
 * (a clean clone has no other "previous main" to compare with). Every version
 * of that file in the history counts, so refreshing it in the same commit as a
 * breaking change does not hide the break.
 */
it("makes no breaking change against any contracts that landed on main", async () => {
  const baseline = "test/fixtures/contracts-baseline.binpb";
  const versions = await run("git", ["log", "--format=%H", "--", baseline], { cwd: repoRoot }).then(
    (r) => r.stdout.split("\n").filter(Boolean),
    () => [] as string[],
  );
  const dir = await mkdtemp(join(tmpdir(), "skein-baseline-"));
  try {
    const against = [join(repoRoot, baseline)];
    for (const commit of versions) {
      const file = join(dir, `${commit}.binpb`);
      const { stdout } = await run("git", ["show", `${commit}:${baseline}`], { cwd: repoRoot, encoding: "buffer", maxBuffer: 64 * 1024 * 1024 });
      await writeFile(file, stdout);
      against.push(file);
    }
    for (const image of against) {
      const r = await run(buf, ["breaking", "--against", image], { cwd: repoRoot }).catch((e: { stdout?: string; stderr?: string }) => ({
        stdout: e.stdout ?? "",
        stderr: `${e.stderr ?? ""} (exit non-zero)`,
      }));
      expect(`${r.stdout}${r.stderr}`, `against ${image}`).toBe("");
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
