import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { filesUnder, repoRoot } from "@skein/testkit";
import { describe, expect, it } from "vitest";

/**
 * The dependency rules CONTRIBUTING.md states for packages/: a package never
 * reaches into a service (the CLI and the session service share goose's formats
 * through @skein/goose-sessions, not through the service), and goose's data
 * format stands alone inside that package.
 */

const SERVICES = ["@skein/session-service", "@skein/fleet-service"];
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*)["']([^"']+)["']/g;

/** The TypeScript sources below a directory. */
const sources = (dir: string): string[] => filesUnder(dir, (e) => e.endsWith(".ts"));

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

/** The relative import graph of the source trees (type-only imports too): file -> the files it imports. */
function importGraph(dirs: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const { file, spec } of dirs.flatMap((d) => specifiers(d))) {
    const edges = graph.get(file) ?? [];
    graph.set(file, edges);
    if (!spec.startsWith(".")) continue;
    const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
    const found = [target, join(target, "index.ts")].find((t) => t.endsWith(".ts") && existsSync(t));
    if (found) edges.push(found);
  }
  return graph;
}

/** One cycle of the graph as "a -> b -> a", if it has any (depth-first search, iterative colours). */
function firstCycle(graph: Map<string, string[]>): string | undefined {
  const state = new Map<string, "open" | "done">();
  const visit = (node: string, path: string[]): string | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node].map((f) => relative(repoRoot, f)).join(" -> ");
    state.set(node, "open");
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    state.set(node, "done");
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("imports", () => {
  it("no source file imports itself through others (type-only imports count: a cycle is a cycle to a reader)", () => {
    const roots = ["packages", "services"].flatMap((top) =>
      readdirSync(join(repoRoot, top))
        .map((name) => join(repoRoot, top, name, "src"))
        .filter((d) => existsSync(d) && !d.endsWith(join("proto", "src"))),
    );
    expect(firstCycle(importGraph(roots))).toBeUndefined();
  });
});
