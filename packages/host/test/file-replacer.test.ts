import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, closeSync, linkSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { FileReplacer } from "../src/file-replacer.js";

let dir: string;
let reader: ChildProcess | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "skein-replacer-"));
});
afterEach(() => {
  reader?.kill("SIGKILL");
  reader = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const temp = (name: string, pid: number, t?: 0 | 1) => `.skein-tmp-${name}-${pid}${t === undefined ? "" : `.${t}`}`;

/** Content whose completeness a reader can check: first and last line name the same version, and the length is stated. */
function version(k: number, len: number): string {
  const head = `begin ${k} ${len}\n`;
  const tail = `\nend ${k}\n`;
  return head + "x".repeat(len - head.length - tail.length) + tail;
}

it("replaces the content, shorter or longer, and turns two inodes instead of allocating one per replace", () => {
  const f = join(dir, "a.hb");
  const files = new FileReplacer(0);
  const inodes = new Set<number>();
  for (const [k, len] of [[1, 5000], [2, 5000], [3, 300], [4, 9000], [5, 120], [6, 120], [7, 4000]] as const) {
    files.replace(f, version(k, len), 0o600);
    expect(readFileSync(f, "utf8")).toBe(version(k, len));
    if (k > 2) inodes.add(statSync(f).ino);
  }
  expect(statSync(f).mode & 0o777).toBe(0o600);
  expect(inodes.size).toBe(2);
  // Between replaces: the file, and the inode it replaced kept under one temp name for the next replace.
  expect(readdirSync(dir).filter((n) => n !== "a.hb")).toEqual([expect.stringMatching(new RegExp(`^${temp("a.hb", process.pid).replaceAll(".", "\\.")}\\.[01]$`))]);
  files.forget(f);
  expect(readdirSync(dir)).toEqual(["a.hb"]);
  files.replace(f, version(8, 200), 0o600);
  expect(readFileSync(f, "utf8")).toBe(version(8, 200));
});

it("leaves a reader that opened the file before a replace its whole old content", () => {
  const f = join(dir, "a.hb");
  const files = new FileReplacer();
  files.replace(f, version(1, 3000), 0o600);
  files.replace(f, version(2, 3000), 0o600);
  const fd = openSync(f, "r");
  try {
    files.replace(f, version(3, 100), 0o600);
    const buf = Buffer.alloc(8192);
    expect(buf.toString("utf8", 0, readSync(fd, buf, 0, buf.length, 0))).toBe(version(2, 3000));
  } finally {
    closeSync(fd);
  }
  expect(readFileSync(f, "utf8")).toBe(version(3, 100));
});

it("never writes through a symlink or into a file with another name found at its temp names", () => {
  const f = join(dir, "a.hb");
  const victim = join(dir, "victim");
  const linked = join(dir, "linked");
  writeFileSync(victim, "victim");
  writeFileSync(linked, "linked");
  symlinkSync(victim, join(dir, temp("a.hb", process.pid, 0)));
  linkSync(linked, join(dir, temp("a.hb", process.pid, 1)));
  const files = new FileReplacer(0);
  for (let k = 1; k <= 4; k++) files.replace(f, version(k, 200), 0o600);
  expect(readFileSync(f, "utf8")).toBe(version(4, 200));
  expect([readFileSync(victim, "utf8"), readFileSync(linked, "utf8")]).toEqual(["victim", "linked"]);
});

it.skipIf(process.getuid?.() !== 0)("never reuses another user's file found at its temp name: the file keeps its writer as owner", () => {
  const f = join(dir, "a.hb");
  const files = new FileReplacer(0);
  files.replace(f, version(1, 200), 0o600);
  files.replace(f, version(2, 200), 0o600);
  // The inode kept for the next replace is swapped for another user's file.
  const spare = join(dir, readdirSync(dir).find((n) => n !== "a.hb")!);
  rmSync(spare);
  writeFileSync(spare, "foreign");
  chownSync(spare, 65534, 65534);
  const fd = openSync(spare, "r");
  try {
    files.replace(f, version(3, 200), 0o600);
    const buf = Buffer.alloc(100);
    expect(buf.toString("utf8", 0, readSync(fd, buf, 0, buf.length, 0))).toBe("foreign");
  } finally {
    closeSync(fd);
  }
  expect(readFileSync(f, "utf8")).toBe(version(3, 200));
  expect(statSync(f).uid).toBe(0);
});

it("sweeps temp files of writers that no longer run, and only those", () => {
  const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
  const names = [temp("a.hb", dead, 0), temp("b.hb", dead), temp("a.hb", process.pid, 1), temp("c.hb", 1, 0), "a.hb", "notes.skein-tmp"];
  for (const n of names) writeFileSync(join(dir, n), "x");
  FileReplacer.sweep(dir);
  expect(readdirSync(dir).sort()).toEqual([temp("a.hb", process.pid, 1), temp("c.hb", 1, 0), "a.hb", "notes.skein-tmp"].sort());
});

/**
 * Replaces the file `replaces` times, `paceMs` apart (0: back to back), with lengths across page
 * boundaries, while another process reads it as fast as it can; returns what the reader saw.
 */
async function hammer(files: FileReplacer, f: string, replaces: number, paceMs: number): Promise<{ reads: number; bad: number; sample: string }> {
  files.replace(f, version(0, 100), 0o600);
  // Reads until stdin closes; counts reads whose first and last lines or length disagree, or that find no file.
  const script = `
    const fs = require("node:fs");
    let reads = 0, bad = 0, sample = "", stop = false;
    process.stdin.on("end", () => (stop = true)).resume();
    const check = (s) => {
      const m = /^begin (\\d+) (\\d+)\\n/.exec(s);
      return m !== null && s.length === Number(m[2]) && s.endsWith("\\nend " + m[1] + "\\n");
    };
    const loop = () => {
      for (let i = 0; i < 200; i++) {
        let s;
        try { s = fs.readFileSync(process.argv[1], "utf8"); } catch (e) { s = String(e.code); }
        reads++;
        if (!check(s)) { bad++; sample = s.slice(0, 40); }
      }
      if (stop) process.stdout.write(JSON.stringify({ reads, bad, sample }));
      else setImmediate(loop);
    };
    process.stdout.write("ready\\n");
    loop();`;
  const child = spawn(process.execPath, ["-e", script, f], { stdio: ["pipe", "pipe", "inherit"] });
  reader = child;
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  for (let k = 1; k <= replaces; k++) {
    files.replace(f, version(k, 60 + ((k * 1777) % 9000)), 0o600);
    if (paceMs > 0 || k % 500 === 0) await new Promise((r) => setTimeout(r, paceMs));
  }
  child.stdin.end();
  await new Promise((resolve) => child.once("exit", resolve));
  return JSON.parse(out.slice(out.indexOf("\n") + 1)) as { reads: number; bad: number; sample: string };
}

it("a reader hammering the file in another process never sees a partial or missing file: inodes reused", async () => {
  // Paced like heartbeats, if faster: each replace overwrites the inode the one before retired (a reader
  // would have to stall 100 ms between its open and its read to see that).
  const result = await hammer(new FileReplacer(100), join(dir, "a.hb"), 40, 100);
  expect(result.reads).toBeGreaterThan(1000);
  expect(result).toMatchObject({ bad: 0, sample: "" });
});

it("a reader hammering the file never sees a partial file when replaces come faster than the reuse delay", async () => {
  // Back to back: no inode is reused (each was the file moments ago), every replace takes a fresh one.
  const result = await hammer(new FileReplacer(), join(dir, "a.hb"), 2_000, 0);
  expect(result.reads).toBeGreaterThan(1000);
  expect(result).toMatchObject({ bad: 0, sample: "" });
});
