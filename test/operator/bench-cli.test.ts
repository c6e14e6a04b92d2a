import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { expect, it } from "vitest";

/** The built bench entry, as `npm run bench -- ARGS` runs it after building. */
const bench = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, "bench/dist/run.js"), ...args], { encoding: "utf8" });

function sectionsOfHelp(): string[] {
  const r = bench("--help");
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").flatMap((l) => /^ {2}(\S+) {2,}\S/.exec(l)?.[1] ?? []);
}

it("npm run bench -- --help lists every section, and the docs name the same ones", () => {
  const listed = sectionsOfHelp();
  expect(listed).toContain("session-pg");
  expect(listed.length).toBeGreaterThan(5);
  const page = join(repoRoot, "docs", "benchmarks.md");
  const readme = readFileSync(page, "utf8");
  const sentence = readme.slice(readme.indexOf("`npm run bench` prints these tables"), readme.indexOf("only when named)"));
  expect([...sentence.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]).sort()).toEqual([...listed].sort());
});

it("a mistyped section exits 2 naming the valid ones, and runs nothing", () => {
  const r = bench("sesion", "fleet");
  expect(r.status).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe(`bench: unknown section "sesion"; sections: ${sectionsOfHelp().join(", ")}\n`);
});
