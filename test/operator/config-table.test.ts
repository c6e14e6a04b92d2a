import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { filesUnder, repoRoot } from "@skein/testkit";
import { describe, expect, it } from "vitest";

/**
 * The configuration tables (docs/configuration.md) are the complete list of environment
 * variables skein reads: this test scans the shipped code (services, packages,
 * the CLI, the npm scripts) for every variable name it mentions or reads and
 * compares with the tables, both ways.
 */

const SOURCE_DIRS = ["packages/runtime/src", "packages/host/src", "packages/goose-sessions/src", "packages/cli/src", "packages/cli/bin", "services/session/src", "services/fleet/src", "services/fleet/bin", "scripts"];
/** Names owned by skein or the tools it reads the settings of. */
const PREFIXED = /\b(?:SKEIN|MOSAIC|GOOSE|OPENAI|ANTHROPIC|OLLAMA)_[A-Z][A-Z0-9_]*\b/g;
/** Any other variable read through an env object or skein's env helpers. */
const ENV_ACCESS = /\b(?:process\.)?env(?:\.([A-Z][A-Z0-9_]*)\b|\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\])|\benv[A-Z]\w*\(\s*["']([A-Z][A-Z0-9_]*)["']/g;

/** A source directory's code files (and extensionless scripts), relative to the repository. */
const files = (dir: string): string[] => filesUnder(join(repoRoot, dir), (e) => /\.(ts|mjs|js)$/.test(e) || !e.includes(".")).map((p) => relative(repoRoot, p));

function withoutComments(text: string, shell: boolean): string {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
  // Removing a variable from a child's environment is not reading it.
  const reads = code.replace(/\bdelete\s+env\.\w+/g, "");
  return shell ? reads.replace(/(^|\s)#.*$/gm, "$1") : reads;
}

/** Every variable name the code mentions outside comments, except constants that merely share the prefix. */
function namesInCode(): Map<string, string> {
  const found = new Map<string, string>();
  for (const f of SOURCE_DIRS.flatMap(files)) {
    const code = withoutComments(readFileSync(join(repoRoot, f), "utf8"), !f.includes("."));
    const declared = (name: string) => new RegExp(`\\b(?:const|let|var|function|class)\\s+${name}\\b`).test(code);
    for (const m of code.matchAll(PREFIXED)) if (!declared(m[0])) found.set(m[0], f);
    for (const m of code.matchAll(ENV_ACCESS)) found.set((m[1] ?? m[2] ?? m[3])!, f);
  }
  return found;
}

/** The configuration page's table rows: the names in each row's first cell, and its cells. */
function tableRows(): { names: string[]; cells: string[] }[] {
  return readFileSync(join(repoRoot, "docs", "configuration.md"), "utf8")
    .split("\n")
    .filter((l) => /^\|\s*`/.test(l))
    .map((l) => {
      const cells = l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
      const names = [...cells[0]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!);
      return { names, cells };
    });
}

describe("the configuration tables (docs/configuration.md)", () => {
  const rows = tableRows();
  const documented = new Set(rows.flatMap((r) => r.names));
  const inCode = namesInCode();

  it("list every variable the code reads", () => {
    const missing = [...inCode].filter(([name]) => !documented.has(name)).map(([name, file]) => `${name} (${file})`);
    expect(missing, "add a row to docs/configuration.md").toEqual([]);
  });

  it("list only variables the code reads", () => {
    const stale = [...documented].filter((name) => !inCode.has(name));
    expect(stale, "the code no longer reads these").toEqual([]);
  });

  it("give each variable a default and a meaning with its rule", () => {
    for (const r of rows) {
      expect(r.cells, r.names.join(", ")).toHaveLength(3);
      expect(r.cells[1], `${r.names.join(", ")}: default`).not.toBe("");
      expect(r.cells[2]!.length, `${r.names.join(", ")}: meaning`).toBeGreaterThan(10);
    }
  });

  it("list each variable once", () => {
    const all = rows.flatMap((r) => r.names);
    expect(all.filter((n, i) => all.indexOf(n) !== i)).toEqual([]);
  });
});
