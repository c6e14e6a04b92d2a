import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findOnPath } from "@skein/host";
import { resolveBuiltin } from "../../src/extensions/goose-builtins.js";
import { parseGooseExtensions } from "../../src/extensions/service-config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-goose-bin-"));
  await mkdir(join(dir, "a"));
  await mkdir(join(dir, "b"));
  await mkdir(join(dir, "a", "goose"));
  await writeFile(join(dir, "b", "goose"), "#!/bin/sh\n");
  await writeFile(join(dir, "b", "not-exec"), "");
  await chmod(join(dir, "b", "goose"), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("goose builtins", () => {
  it("finds the goose CLI on PATH: executable files only, absolute entries only", () => {
    expect(findOnPath("goose", `${join(dir, "a")}::relative:${join(dir, "b")}`)).toBe(join(dir, "b", "goose"));
    expect(findOnPath("not-exec", join(dir, "b"))).toBeUndefined();
    expect(findOnPath("goose", undefined)).toBeUndefined();
  });

  it("runs what `goose mcp` serves, spelled as goose accepts it", () => {
    expect(resolveBuiltin("Computer Controller", "/bin/goose")).toEqual({ cmd: "/bin/goose", args: ["mcp", "computercontroller"] });
    expect(resolveBuiltin("developer", "/bin/goose")).toEqual({ cmd: "/bin/goose", args: ["mcp", "developer"] });
    expect(resolveBuiltin("jetbrains", "/bin/goose")).toEqual({ skipped: '`goose mcp` does not serve a builtin named "jetbrains"' });
    expect(resolveBuiltin("memory", undefined)).toEqual({ skipped: "it is built into goose, and the goose CLI is not on PATH to run it as `goose mcp memory`" });
  });

  it("config.yaml builtins become stdio extensions named as goose names them; each skipped entry is one warning", () => {
    const warnings: [Record<string, unknown>, string][] = [];
    const log = { warn: (o: Record<string, unknown>, m: string) => void warnings.push([o, m]) } as never;
    const yaml = `extensions:
  computercontroller:
    display_name: Computer Controller
    enabled: true
    name: computercontroller
    timeout: 120
    type: builtin
  jetbrains:
    enabled: true
    name: jetbrains
    type: builtin
  app:
    enabled: true
    name: app
    type: frontend
`;
    expect(parseGooseExtensions(yaml, "c.yaml", { goose: () => "/opt/goose", log })).toEqual([
      { name: "computercontroller", cmd: "/opt/goose", args: ["mcp", "computercontroller"], env: {}, timeoutSeconds: 120 },
    ]);
    expect(warnings).toEqual([
      [{ extension: "jetbrains", type: "builtin", source: "c.yaml" }, 'goose extension jetbrains skipped: `goose mcp` does not serve a builtin named "jetbrains"'],
      [{ extension: "app", type: "frontend", source: "c.yaml" }, 'goose extension app skipped: type "frontend" is not supported; skein runs stdio and builtin extensions'],
    ]);
  });
});
