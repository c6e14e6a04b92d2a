import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { afterAll, expect, it } from "vitest";
import { installAdvice } from "../../scripts/lib/install-advice.mjs";

/**
 * A checkout with nothing installed whose `npm ci` fails: the wrapper shows
 * npm's output, then one line of advice, and exits with npm's code; the build
 * script running it adds no stack trace. npm is a fake on PATH that fails as
 * better-sqlite3's install script does without network or compiler.
 */
const dir = mkdtempSync(join(tmpdir(), "skein-install-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NPM_OUTPUT = `npm error code 1
npm error path ${dir}/node_modules/better-sqlite3
npm error command failed
npm error command sh -c prebuild-install || node-gyp rebuild --release
npm error prebuild-install warn install request to https://github.com/WiseLibs/better-sqlite3/releases/download/v12.4.1/better-sqlite3-v12.4.1-node-v115-linux-x64.tar.gz failed, reason: getaddrinfo EAI_AGAIN github.com
npm error gyp ERR! stack Error: getaddrinfo EAI_AGAIN nodejs.org
`;

function checkout(): string {
  const root = mkdtempSync(join(dir, "clone-"));
  cpSync(join(repoRoot, "scripts"), join(root, "scripts"), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { workspaces: string[] };
  for (const f of ["package.json", "package-lock.json", ...manifest.workspaces.map((w) => `${w}/package.json`)]) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    cpSync(join(repoRoot, f), join(root, f));
  }
  const bin = join(root, "fake-bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "npm"), `#!/bin/sh\ncat >&2 <<'OUT'\n${NPM_OUTPUT}OUT\nexit 1\n`);
  chmodSync(join(bin, "npm"), 0o755);
  return root;
}

it("a failed npm ci ends with npm's output, one line saying what to do, npm's exit code, and no stack trace", () => {
  const root = checkout();
  const r = spawnSync(process.execPath, [join(root, "scripts/ensure-built.mjs")], {
    cwd: root,
    env: { PATH: `${join(root, "fake-bin")}:${process.env.PATH}`, HOME: dir },
    encoding: "utf8",
  });
  expect(r.status).toBe(1);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines[0]).toBe("[skein] installing dependencies (npm ci)");
  expect(r.stderr).toContain(NPM_OUTPUT);
  expect(lines.at(-1)).toBe(`skein: npm ci failed (exit 1): ${installAdvice(NPM_OUTPUT)}`);
  expect(lines.at(-1)).toMatch(/github\.com.*compiler.*npm_config_nodedir/);
  // Only npm's own "gyp ERR! stack" line mentions a stack: none of Node's.
  expect(lines.filter((l) => /^\s+at |node:internal|^Error/.test(l))).toEqual([]);
  expect(lines.length).toBe(1 + NPM_OUTPUT.trimEnd().split("\n").length + 1);
});

it("each kind of failure gets its own advice", () => {
  expect(installAdvice("npm error code ENOTFOUND\nnpm error network request to https://registry.npmjs.org/pg failed")).toMatch(/^npm could not download packages/);
  expect(installAdvice("npm error code EACCES")).toMatch(/denied access/);
  expect(installAdvice("npm error code ENOSPC")).toMatch(/disk is full/);
  expect(installAdvice("npm error something else")).toBe("see npm's output above, fix what it names, then run npm ci again");
});
