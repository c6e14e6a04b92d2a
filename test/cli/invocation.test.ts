import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { skeinCommand } from "../../packages/cli/src/invocation.js";
import { CLI, killClis, runCli } from "./cli.js";

const dir = mkdtempSync(join(tmpdir(), "skein-invocation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(killClis);

/** A directory holding a `skein` link to the CLI, as `npm link` makes one. */
const linked = join(dir, "linked");
mkdirSync(linked);
symlinkSync(CLI, join(linked, "skein"));
/** A PATH with node only: a checkout that is not linked (node's own directory may hold a linked skein). */
const nodeOnly = join(dir, "node-only");
mkdirSync(nodeOnly);
symlinkSync(process.execPath, join(nodeOnly, "node"));

describe("the command the CLI's hints name", () => {
  it("is `skein` when a skein is on the PATH, `npx skein` when not", () => {
    expect(skeinCommand({ PATH: `${nodeOnly}:${linked}` })).toBe("skein");
    expect(skeinCommand({ PATH: nodeOnly })).toBe("npx skein");
  });

  it("does not count the checkout's node_modules/.bin that npx or npm run put on the PATH", () => {
    const npmPath = `${repoRoot}node_modules/.bin:${nodeOnly}`;
    expect(skeinCommand({ PATH: npmPath, npm_command: "exec" })).toBe("npx skein");
    expect(skeinCommand({ PATH: npmPath, npm_lifecycle_event: "start" })).toBe("npx skein");
    expect(skeinCommand({ PATH: `${npmPath}:${linked}`, npm_command: "exec" })).toBe("skein");
    // Put there by the user's own shell: it works as typed.
    expect(skeinCommand({ PATH: npmPath })).toBe("skein");
  });

  it("completion's help says to put skein on the PATH first when it is not there", async () => {
    const off = await runCli(["completion", "--help"], { PATH: nodeOnly });
    expect(off.stdout).toContain("bash: put skein on your PATH (`npm link` in the checkout), then add `source <(skein completion bash)` to ~/.bashrc");
    const on = await runCli(["completion", "--help"]);
    expect(on.stdout).toContain("bash: add `source <(skein completion bash)` to ~/.bashrc");
    expect(on.stdout).not.toContain("npm link");
  });
});

it("npm link in the checkout puts a working skein on the PATH (into a private prefix here)", { timeout: 120_000 }, () => {
  const prefix = join(dir, "prefix");
  const env = { PATH: process.env.PATH!, HOME: dir, npm_config_prefix: prefix };
  const link = spawnSync("npm", ["link", "--offline", "--no-audit", "--no-fund"], { cwd: repoRoot, env, encoding: "utf8" });
  expect(link.status, link.stderr).toBe(0);
  const r = spawnSync("skein", ["--version"], { env: { PATH: `${join(prefix, "bin")}:${nodeOnly}`, HOME: dir }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^skein \d+\.\d+\.\d+/);
});
