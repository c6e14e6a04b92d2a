import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { rejection, repoRoot } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

const BIN = join(repoRoot, "services/fleet/bin/skein-fleet-start");

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

function runDropIn(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { PATH: process.env.PATH!, HOME: h.dir, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("skein-fleet-start (drop-in for the old launcher)", () => {
  it("starts from MOSAIC_* settings, then says already running and exits 0", async () => {
    h = new FleetHarness();
    const runDir = join(h.dir, "run");
    // The old launcher's heartbeat directory, allowed by the operator.
    h.extraEnv.SKEIN_HEARTBEAT_ROOTS = runDir;
    await h.start();
    const bin = join(h.dir, "rt-bin");
    mkdirSync(bin);
    const env = {
      SKEIN_FLEET_ADDR: h.svc!.address,
      MOSAIC_TMUX_SOCKET: h.socket,
      MOSAIC_AGENT_WORKDIR: h.work,
      MOSAIC_AGENT_COMMAND: `sh -c 'echo "$PATH" > path.txt; exec sleep 300' --model openai-codex/gpt-5.5:high`,
      MOSAIC_AGENT_RUNTIME: "pi",
      MOSAIC_RUNTIME_BIN: bin,
      MOSAIC_HEARTBEAT_RUN_DIR: runDir,
      MOSAIC_HEARTBEAT_INTERVAL: "2",
    };
    const first = await runDropIn(["coder-1"], env);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toContain("started");
    const a = await h.getAgent("coder-1");
    expect(a).toMatchObject({ workdir: h.work, runtime: "pi", heartbeatIntervalSeconds: 2, heartbeatFile: join(runDir, "coder-1.hb"), runtimeBinDirs: [bin] });
    expect(a.command).toBe(env.MOSAIC_AGENT_COMMAND);
    expect(readFileSync(a.heartbeatFile, "utf8")).toMatch(/^ts=.*\npid=\d+\nstatus=ok\nruntime=pi\nagent=coder-1\n/);
    const path = await waitFor("path.txt", () => existsSync(join(h.work, "path.txt")) && readFileSync(join(h.work, "path.txt"), "utf8"));
    expect(path.startsWith(`${bin}:`)).toBe(true);

    const second = await runDropIn(["coder-1"], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("already running");
    expect(h.sessions()).toEqual(["coder-1"]);
  });

  it("fails naming the service's socket when MOSAIC_TMUX_SOCKET names another", async () => {
    h = await new FleetHarness().start();
    const r = await runDropIn(["coder-2"], { SKEIN_FLEET_ADDR: h.svc!.address, MOSAIC_TMUX_SOCKET: "some-other-socket", MOSAIC_AGENT_COMMAND: "sleep 300", MOSAIC_AGENT_WORKDIR: h.work });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(h.socket);
    expect(r.stderr).toContain("some-other-socket");
    expect(h.sessions()).toEqual([]);
  });

  it("exits non-zero with a usage line without an agent name, and names the address it cannot reach", async () => {
    h = new FleetHarness();
    const usage = await runDropIn([], { MOSAIC_AGENT_COMMAND: "sleep 1" });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("usage: skein-fleet-start AGENT");
    const down = await runDropIn(["x"], { SKEIN_FLEET_ADDR: "127.0.0.1:1", MOSAIC_AGENT_COMMAND: "sleep 1", MOSAIC_AGENT_WORKDIR: h.work });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("127.0.0.1:1");
  });
});

describe("without tmux", () => {
  it("answers FAILED_PRECONDITION saying tmux is missing", async () => {
    h = new FleetHarness();
    h.extraEnv.PATH = join(h.dir, "empty-path");
    await h.start();
    const err = await rejection(h.startAgent({ name: "a", command: "sleep 1" }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toContain("tmux is not installed");
  });
});
