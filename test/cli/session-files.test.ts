import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fixturesDir } from "../../services/session/test/support/goose-file.js";
import { expectOneLineError, killClis, runCli, type CliResult } from "./cli.js";

let dir: string;
let sessionsDir: string;
let jsonlDir: string;
let svc: ServiceProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-cli-import-"));
  sessionsDir = join(dir, "sessions");
  jsonlDir = join(dir, "old");
  await mkdir(jsonlDir);
  for (const f of ["20250728_101010.jsonl", "20250801_093000.jsonl"]) await copyFile(join(fixturesDir, f), join(jsonlDir, f));
  await writeFile(join(jsonlDir, "empty.jsonl"), "");
  // The service runs on the same database while the CLI writes it directly.
  svc = await startService("session", { HOME: dir, SKEIN_SESSIONS_DIR: sessionsDir });
});
afterEach(() => killClis());

function expectError(r: CliResult, code: number, message: RegExp): void {
  expect(r.code).toBe(code);
  expect(expectOneLineError(r)).toMatch(message);
}
afterAll(async () => {
  await svc?.stop("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("skein session import", () => {
  it("moves JSONL sessions into sessions.db with goose's rules; the running service lists them; a second run skips them", async () => {
    const r = await runCli(["session", "import", jsonlDir, "--to", sessionsDir], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([
      "imported 20250728_101010 (4 messages)",
      expect.stringMatching(/^imported 20250801_093000 \(4 messages, 1 unreadable lines left out\)$/),
      expect.stringMatching(/^skipped empty \(.*empty\.jsonl\): empty session file$/),
    ]);
    const ls = await runCli(["session", "ls", "--json"], { SKEIN_SESSION_ADDR: svc.address });
    const listed = (JSON.parse(ls.stdout) as { sessions: { id: string; description: string }[] }).sessions;
    expect(listed.map((s) => [s.id, s.description])).toContainEqual(["20250728_101010", "Berlin weather"]);

    const again = await runCli(["session", "import", join(jsonlDir, "20250728_101010.jsonl")], { SKEIN_SESSIONS_DIR: sessionsDir });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^skipped 20250728_101010 .*already in the database/);
    expect((await readdir(jsonlDir)).sort()).toEqual(["20250728_101010.jsonl", "20250801_093000.jsonl", "empty.jsonl"]);
  });

  it("refuses what is neither a .jsonl file nor a directory", async () => {
    await writeFile(join(dir, "notes.txt"), "x");
    expectError(await runCli(["session", "import", join(dir, "notes.txt"), "--to", sessionsDir], {}), 2, /notes\.txt is not a \.jsonl file, a goose sessions\.db or a directory/);
  });
});

describe("skein session export", () => {
  it("writes a session as goose ≤1.9 JSONL and never replaces a file", async () => {
    await runCli(["session", "import", jsonlDir, "--to", sessionsDir], {});
    const out = join(dir, "export");
    await mkdir(out);
    const r = await runCli(["session", "export", "20250728_101010", "--to", out, "--format", "jsonl", "--from", sessionsDir], {});
    expect(r.code, r.stderr).toBe(0);
    const lines = (await readFile(join(out, "20250728_101010.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ working_dir: "/tmp", description: "Berlin weather", message_count: 4 });
    expect(lines.slice(1).map((l) => l.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expectError(await runCli(["session", "export", "20250728_101010", "--to", out, "--format", "jsonl", "--from", sessionsDir], {}), 1, /already exists/);
    expectError(await runCli(["session", "export", "../x", "--to", out, "--format", "jsonl", "--from", sessionsDir], {}), 2, /ID: /);
    // The default format: into another goose sessions.db, once.
    const other = join(dir, "other-goose");
    await mkdir(other);
    const db = await runCli(["session", "export", "20250728_101010", "--to", other, "--from", sessionsDir], {});
    expect(db.code, db.stderr).toBe(0);
    expect(db.stdout).toMatch(/^wrote 20250728_101010 into .*other-goose\/sessions\.db \(4 messages\)/);
    expectError(await runCli(["session", "export", "20250728_101010", "--to", other, "--from", sessionsDir], {}), 1, /already in the target database/);
    expectError(await runCli(["session", "export", "20250728_101010", "--to", sessionsDir, "--from", sessionsDir], {}), 1, /--to is the database the session comes from/);
  });

  it("creates DIR (0700, with its parents) when missing, and every file it writes is 0600, as are the service's sessions.db and its -wal/-shm", async () => {
    await runCli(["session", "import", jsonlDir, "--to", sessionsDir], {});
    const mode = async (p: string) => (await stat(p)).mode & 0o777;
    const nested = join(dir, "new", "exports");
    const r = await runCli(["session", "export", "20250728_101010", "--to", nested, "--format", "jsonl", "--from", sessionsDir], {});
    expect(r.code, r.stderr).toBe(0);
    expect(await mode(nested)).toBe(0o700);
    expect(await mode(join(nested, "20250728_101010.jsonl"))).toBe(0o600);
    const db = join(dir, "new", "goose");
    const d = await runCli(["session", "export", "20250728_101010", "--to", db, "--from", sessionsDir], {});
    expect(d.code, d.stderr).toBe(0);
    for (const f of await readdir(db)) expect([f, await mode(join(db, f))]).toEqual([f, 0o600]);
    // The running service made this one; SQLite gives -wal and -shm the database's mode.
    const served = (await readdir(sessionsDir)).filter((f) => f.startsWith("sessions.db"));
    expect(served).toContain("sessions.db-wal");
    for (const f of served) expect([f, await mode(join(sessionsDir, f))]).toEqual([f, 0o600]);
    // Nothing is made for a session that does not exist, and a file is not a directory.
    const never = join(dir, "never");
    expectError(await runCli(["session", "export", "20990101_1", "--to", never, "--from", sessionsDir], {}), 1, /^skein: session 20990101_1 does not exist$/);
    await expect(stat(never)).rejects.toThrow(/ENOENT/);
    await writeFile(join(dir, "a-file"), "x");
    expectError(await runCli(["session", "export", "20250728_101010", "--to", join(dir, "a-file"), "--from", sessionsDir], {}), 1, /a-file is not a directory$/);
  });
});
