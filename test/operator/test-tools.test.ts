import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { afterAll, expect, it } from "vitest";

/** npm test's preflight on a PATH holding only the programs named. */
const dir = mkdtempSync(join(tmpdir(), "skein-tools-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function preflight(programs: string[]) {
  const bin = mkdtempSync(join(dir, "bin-"));
  for (const p of programs) {
    const found = spawnSync("sh", ["-c", `command -v ${p}`], { encoding: "utf8" }).stdout.trim();
    expect(found, p).not.toBe("");
    symlinkSync(found, join(bin, p));
  }
  const r = spawnSync(process.execPath, [join(repoRoot, "scripts/check-test-tools.mjs")], { env: { PATH: bin, HOME: dir }, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

it("without strace and zsh the run goes on, and one line says which tests skip and what to install", () => {
  const r = preflight(["tmux"]);
  expect(r.code).toBe(0);
  expect(r.err).toBe(
    "[skein] strace and zsh not installed: the fleet's reaping-fault test and the zsh completion test will skip (to run them: sudo apt-get install -y strace zsh)\n",
  );
});

it("with everything there it says nothing", () => {
  expect(preflight(["tmux", "strace", "zsh"])).toEqual({ code: 0, out: "", err: "" });
});

it("without tmux it stops before vitest and says how to install it", () => {
  const r = preflight(["strace", "zsh"]);
  expect(r.code).toBe(1);
  expect(r.err).toMatch(/^skein: tmux is not installed, and the fleet tests drive real tmux\.\nInstall it with: {2}sudo apt-get update && sudo apt-get install -y tmux/);
});
