import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { launchCommand, resolveBinDirs, shellQuote } from "../src/launch-command.js";
import { escapeFormat, escapeTrailingSemicolon, pieces } from "../src/tmux.js";

const NASTY = [`$(touch MARK1)`, "`touch MARK2`", `it's "quoted"`, `a; touch MARK3`, `\\$HOME \\`, `#(touch MARK4) #{pane_id}`, "new\nline"];

describe("launchCommand", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skein-launch-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (shell: string) => execFileSync("/bin/sh", ["-c", shell], { cwd: dir, encoding: "utf8" });

  it("writes PATH dirs, quoted exports and exec in the launcher's shape", () => {
    expect(launchCommand({ binDirs: ["/opt/a", "/home/u/.local/bin"], env: { MODEL: "gpt-5.5:high" }, command: "mosaic yolo pi --model openai-codex/gpt-5.5:high" })).toBe(
      `export PATH='/opt/a':'/home/u/.local/bin':"$PATH"; export MODEL='gpt-5.5:high'; exec mosaic yolo pi --model openai-codex/gpt-5.5:high`,
    );
    expect(launchCommand({ binDirs: [], env: {}, command: "pi" })).toBe("exec pi");
  });

  it("keeps every env value and bin dir as data: metacharacters run nothing", () => {
    const env = Object.fromEntries(NASTY.map((v, i) => [`V${i}`, v]));
    const shell = launchCommand({ binDirs: NASTY.map((v) => `/x/${v}`), env, command: `printf '%s\\n---\\n' "$PATH" ${NASTY.map((_, i) => `"$V${i}"`).join(" ")}` });
    const out = run(shell).split("\n---\n");
    expect(out[0]!.startsWith(NASTY.map((v) => `/x/${v}`).join(":") + ":")).toBe(true);
    NASTY.forEach((v, i) => expect(out[i + 1]).toBe(v));
    for (const m of ["MARK1", "MARK2", "MARK3", "MARK4"]) expect(existsSync(join(dir, m))).toBe(false);
  });

  it("forwards the command line as is: its own quoting and flags are the shell's to read, once", () => {
    const shell = launchCommand({ binDirs: [], env: {}, command: `printf '<%s>' --model openai-codex/gpt-5.5:high '$(touch MARK1)' "it's" 'a;b'` });
    expect(run(shell)).toBe("<--model><openai-codex/gpt-5.5:high><$(touch MARK1)><it's><a;b>");
    expect(existsSync(join(dir, "MARK1"))).toBe(false);
  });

  it("refuses env names that would be shell syntax", () => {
    expect(() => launchCommand({ binDirs: [], env: { "A;touch x": "1" }, command: "true" })).toThrow(/invalid environment variable name/);
  });

  it("quotes single quotes the POSIX way", () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(run(`printf %s ${shellQuote("a'b'\\c")}`)).toBe("a'b'\\c");
  });
});

describe("resolveBinDirs", () => {
  it("orders request, configured, ~/.npm-global/bin, ~/.local/bin; keeps existing ones once", () => {
    const exists = new Set(["/r1", "/c1", "/h/.npm-global/bin", "/h/.local/bin"]);
    expect(resolveBinDirs({ request: ["/r1", "/missing", "/c1/"], configured: ["/c1", "/r1"], home: "/h" }, (p) => exists.has(p))).toEqual([
      "/r1",
      "/c1",
      "/h/.npm-global/bin",
      "/h/.local/bin",
    ]);
    expect(resolveBinDirs({ request: [], configured: [], home: "/h" }, () => false)).toEqual([]);
  });
});

describe("tmux argument escaping", () => {
  it("doubles # so -c directories expand no formats", () => {
    expect(escapeFormat("/a/#(touch x)/#{pane_id}")).toBe("/a/##(touch x)/##{pane_id}");
  });
  it("escapes a trailing ; that tmux would take as a command separator", () => {
    expect(escapeTrailingSemicolon("find . -exec ls {} \\;")).toBe("find . -exec ls {} \\\\;");
    expect(escapeTrailingSemicolon("a;b")).toBe("a;b");
  });
});

describe("pieces", () => {
  it("splits by code points, never inside a surrogate pair, and loses nothing", () => {
    expect(pieces("abcde", 2)).toEqual(["ab", "cd", "e"]);
    expect(pieces("🙂🙂🙂", 2)).toEqual(["🙂🙂", "🙂"]);
    expect(pieces("", 3)).toEqual([]);
  });
});
