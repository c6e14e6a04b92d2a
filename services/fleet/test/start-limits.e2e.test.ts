import { mkdirSync, readFileSync, readlinkSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { call, rejection } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

describe("values tmux would parse", () => {
  it("starts in a workdir ending in ; or \\; and keeps values ending in ; intact", async () => {
    h = await new FleetHarness().start();
    const cases = [
      ["semi", join(h.work, "ends-with;")],
      ["escaped", join(h.work, "ends-with\\;")],
      ["double", join(h.work, "two\\\\;")],
    ] as const;
    for (const [name, dir] of cases) {
      mkdirSync(dir);
      const res = await h.startAgent({ name, workdir: dir, command: "sleep 300", env: { TAIL: "value;", TAIL2: "value\\;" } });
      expect(res.agent!.state, name).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
      expect(res.agent!.workdir).toBe(dir);
      await waitFor(`${name} to exec`, () => readFileSync(`/proc/${res.agent!.panePid}/cmdline`, "utf8").startsWith("sleep"));
      expect(readlinkSync(`/proc/${res.agent!.panePid}/cwd`), name).toBe(dir);
      const env = readFileSync(`/proc/${res.agent!.panePid}/environ`, "utf8").split("\0");
      expect(env).toContain("TAIL=value;");
      expect(env).toContain("TAIL2=value\\;");
    }
  });
});

describe("input size", () => {
  it("types text longer than one tmux command can carry, in order", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "typist", command: `sh -c 'stty -icanon; exec cat > typed.txt'` });
    // 4 bytes per character in UTF-8: 40,000 bytes, over twice tmux's limit for one command.
    const text = "🙂".repeat(5_000) + "x".repeat(20_000) + "end";
    await call(h.client, h.client.sendInput, { name: "typist", text, pressEnter: false });
    const typed = await waitFor("all of it typed", () => {
      const t = readFileSync(join(h.work, "typed.txt"), "utf8");
      return t.endsWith("end") && t;
    });
    expect(typed).toBe(text);
  });
});

describe("launch line size", () => {
  it("refuses a launch line tmux cannot take, naming the limit, before touching tmux", async () => {
    h = await new FleetHarness().start();
    const many: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) many[`K${i}`] = "v";
    const cases: Array<[Partial<fleet.StartAgentRequest>, string]> = [
      [{ env: { BIG: "x".repeat(200_000) } }, "env"],
      [{ env: many }, "env"],
      [{ command: `echo ${"y".repeat(60_000)}` }, "command"],
    ];
    for (const [req, field] of cases) {
      const err = await rejection(h.startAgent({ name: "big", command: "sleep 300", ...req }));
      expect(err.code, field).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(new RegExp(`^${field}: `));
      expect(err.details).toMatch(/at most 16\d{3} bytes/);
    }
    expect(h.sessions()).toEqual([]);
    // Just under the limit still starts.
    const res = await h.startAgent({ name: "fits", command: "sleep 300", env: { MID: "z".repeat(15_000) } });
    expect(res.agent!.state).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
  });
});

describe("heartbeat_dir confinement", () => {
  it("accepts directories under SKEIN_HEARTBEAT_DIR and SKEIN_HEARTBEAT_ROOTS only, after resolving .. and symlinks", async () => {
    h = new FleetHarness();
    const extra = join(h.dir, "extra-root");
    mkdirSync(extra);
    h.extraEnv.SKEIN_HEARTBEAT_ROOTS = extra;
    await h.start();
    mkdirSync(h.hbDir, { recursive: true });
    symlinkSync(h.dir, join(h.hbDir, "escape-link"));
    symlinkSync(join(extra), join(h.dir, "link-to-extra"));
    const refused = [
      join(h.hbDir, "..", "elsewhere"),
      join(h.hbDir, "sub", "..", "..", "elsewhere"),
      join(h.hbDir, "escape-link", "x"),
      join(h.hbDir, "escape-link"),
      // As written (join would fold it away): escape-link/.. is the parent of h.dir, not h.hbDir.
      `${h.hbDir}/escape-link/../hb/x`,
      "/etc/skein",
      `${extra}-sibling`,
    ];
    for (const dir of refused) {
      const err = await rejection(h.startAgent({ name: "hb", command: "sleep 300", heartbeatDir: dir }));
      expect(err.code, dir).toBe(status.INVALID_ARGUMENT);
      expect(err.details, dir).toMatch(/^heartbeat_dir: /);
      expect(err.details).toContain(extra);
    }
    expect(h.sessions()).toEqual([]);
    const accepted: Array<[string, string]> = [
      [join(h.hbDir, "team-a"), join(h.hbDir, "team-a")],
      [join(h.hbDir, "x", "..", "team-b"), join(h.hbDir, "team-b")],
      [join(extra, "deep", "er"), join(extra, "deep", "er")],
      [join(h.dir, "link-to-extra", "via-link"), join(extra, "via-link")],
    ];
    for (const [i, [dir, real]] of accepted.entries()) {
      const a = (await h.startAgent({ name: `ok-${i}`, command: "sleep 300", heartbeatDir: dir })).agent!;
      expect(a.heartbeatFile).toBe(join(real, `ok-${i}.hb`));
      expect(readFileSync(a.heartbeatFile, "utf8")).toContain("status=ok");
    }
  });
});
