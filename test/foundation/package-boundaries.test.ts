import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { repoRoot } from "@skein/testkit";
import { describe, expect, it } from "vitest";

/**
 * The dependency rules CONTRIBUTING.md states for packages/: a package never
 * reaches into a service (the CLI and the session service share goose's formats
 * through @skein/goose-sessions, not through the service), and goose's data
 * format stands alone inside that package.
 */

const SERVICES = ["@skein/session-service", "@skein/fleet-service"];
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*)["']([^"']+)["']/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** Every import and export specifier of a source file, with the file it is in. */
function specifiers(dir: string): { file: string; spec: string }[] {
  return sources(dir).flatMap((file) => [...readFileSync(file, "utf8").matchAll(SPECIFIER)].map((m) => ({ file, spec: m[1]! })));
}

const packages = readdirSync(join(repoRoot, "packages")).filter((p) => statSync(join(repoRoot, "packages", p, "src"), { throwIfNoEntry: false })?.isDirectory());

describe("package boundaries", () => {
  it.each(packages)("packages/%s imports no service, by name or by path, and does not depend on one", (name) => {
    const dir = join(repoRoot, "packages", name);
    const bad = specifiers(join(dir, "src")).filter(({ file, spec }) => {
      if (SERVICES.some((s) => spec === s || spec.startsWith(`${s}/`))) return true;
      return spec.startsWith(".") && !resolve(file, "..", spec).startsWith(dir + "/");
    });
    expect(bad.map(({ file, spec }) => `${relative(repoRoot, file)}: ${spec}`)).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
    const deps = ["dependencies", "devDependencies", "peerDependencies"].flatMap((f) => Object.keys(manifest[f] ?? {}));
    expect(deps.filter((d) => SERVICES.includes(d))).toEqual([]);
  });

  it("goose's data format (goose-sessions/src/goose-format) imports only itself, @skein/host and @skein/runtime", () => {
    const dir = join(repoRoot, "packages/goose-sessions/src/goose-format");
    const bad = specifiers(dir).filter(({ spec }) => !spec.startsWith("./") && !spec.startsWith("node:") && spec !== "@skein/host" && spec !== "@skein/runtime");
    expect(bad.map(({ file, spec }) => `${relative(repoRoot, file)}: ${spec}`)).toEqual([]);
  });

  it("the session service and the CLI reach goose's formats only through the package's entry points", () => {
    const entries = Object.keys((JSON.parse(readFileSync(join(repoRoot, "packages/goose-sessions/package.json"), "utf8")) as { exports: Record<string, unknown> }).exports);
    const allowed = new Set(entries.map((e) => (e === "." ? "@skein/goose-sessions" : `@skein/goose-sessions/${e.slice(2)}`)));
    const users = ["services/session/src", "packages/cli/src"].flatMap((d) => specifiers(join(repoRoot, d)));
    const bad = users.filter(({ spec }) => (spec.startsWith("@skein/goose-sessions") && !allowed.has(spec)) || spec.includes("goose-sessions/src"));
    expect(bad.map(({ file, spec }) => `${relative(repoRoot, file)}: ${spec}`)).toEqual([]);
    expect(users.some(({ spec }) => allowed.has(spec))).toBe(true);
  });
});
