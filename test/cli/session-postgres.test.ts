import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import { expectGooseReadable, openLikeGoose } from "../../services/session/test/support/goose-db.js";
import { fixturesDir } from "../../services/session/test/support/goose-file.js";
import { expectOneLineError, killClis, runCli } from "./cli.js";

let cluster: PostgresCluster;
let dir: string;
let jsonlDir: string;
const log = pino({ level: "silent" });
const IDS = ["20250728_101010", "20250801_093000"];

beforeAll(async () => {
  cluster = await testPostgres();
  dir = await mkdtemp(join(tmpdir(), "skein-cli-pg-"));
  jsonlDir = join(dir, "old");
  await mkdir(jsonlDir);
  for (const id of IDS) await copyFile(join(fixturesDir, `${id}.jsonl`), join(jsonlDir, `${id}.jsonl`));
});
afterEach(() => killClis());
afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function loadAll(url: string): Promise<unknown[]> {
  const store = await PostgresSessionStore.open(url, log);
  try {
    const out: unknown[] = [];
    for (const id of IDS) {
      const s = await store.load(id);
      out.push({ id: s!.id, metadata: s!.metadata, messages: s!.messages });
    }
    return out;
  } finally {
    await store.close();
  }
}

describe("skein session import/export with the PostgreSQL store", () => {
  it("round-trips JSONL → PostgreSQL → goose sessions.db → PostgreSQL, ids, messages and metadata intact", async () => {
    const first = await cluster.createDatabase();
    const imp = await runCli(["session", "import", jsonlDir, "--store", "postgres"], { SKEIN_DATABASE_URL: first });
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toMatch(/^imported 20250728_101010 \(4 messages\)/);
    const again = await runCli(["session", "import", join(jsonlDir, `${IDS[0]}.jsonl`)], { SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: first });
    expect(again.stdout).toMatch(/^skipped 20250728_101010 .*already in the database/);

    const gooseDir = join(dir, "goose-sessions");
    await mkdir(gooseDir);
    for (const id of IDS) {
      const r = await runCli(["session", "export", id, "--to", gooseDir, "--store", "postgres", "--database-url", first], {});
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^wrote ${id} into .*sessions\\.db \\(\\d+ messages\\)`));
    }
    const db = openLikeGoose(join(gooseDir, "sessions.db"));
    try {
      for (const id of IDS) expect(expectGooseReadable(db, id).length).toBeGreaterThan(0);
      expect(db.prepare("SELECT name FROM sessions WHERE id = ?").get(IDS[0])).toEqual({ name: "Berlin weather" });
    } finally {
      db.close();
    }
    const twice = await runCli(["session", "export", IDS[0]!, "--to", gooseDir, "--store", "postgres"], { SKEIN_DATABASE_URL: first });
    expect(twice.code).toBe(1);
    expect(expectOneLineError(twice)).toMatch(/already in the target database/);

    const second = await cluster.createDatabase();
    const back = await runCli(["session", "import", join(gooseDir, "sessions.db"), "--store", "postgres"], { SKEIN_DATABASE_URL: second });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout.trim().split("\n").sort()).toEqual([expect.stringMatching(/^imported 20250728_101010 /), expect.stringMatching(/^imported 20250801_093000 /)]);
    expect(await loadAll(second)).toEqual(await loadAll(first));

    const jsonlOut = join(dir, "jsonl-out");
    await mkdir(jsonlOut);
    const j = await runCli(["session", "export", IDS[0]!, "--to", jsonlOut, "--format", "jsonl", "--store", "postgres"], { SKEIN_DATABASE_URL: second });
    expect(j.code, j.stderr).toBe(0);
    const lines = (await readFile(join(jsonlOut, `${IDS[0]}.jsonl`), "utf8")).trim().split("\n");
    expect(JSON.parse(lines[0]!)).toMatchObject({ description: "Berlin weather", message_count: 4 });
  });

  it("bad or unreachable database settings: a one-line error without the password", async () => {
    const bad = await runCli(["session", "import", jsonlDir, "--store", "postgres", "--database-url", "mysql://u:Sekr1t@h/db"], {});
    expect(bad.code).toBe(2);
    expect(expectOneLineError(bad)).toMatch(/--database-url \(or SKEIN_DATABASE_URL\)=.*\*\*\*.*must start with postgresql:\/\//);
    expect(bad.stderr + bad.stdout).not.toContain("Sekr1t");
    const missing = await runCli(["session", "import", jsonlDir, "--store", "postgres"], { SKEIN_DATABASE_URL: undefined });
    expect(missing.code).toBe(2);
    expect(expectOneLineError(missing)).toMatch(/must be set/);
    const url = (await cluster.createDatabase()).replace(cluster.password, "Wr0ngPw");
    const wrong = await runCli(["session", "import", jsonlDir, "--store", "postgres"], { SKEIN_DATABASE_URL: url });
    expect(wrong.code).toBe(1);
    expect(expectOneLineError(wrong)).toMatch(/cannot open the PostgreSQL session store: .*password authentication failed/);
    expect(wrong.stderr + wrong.stdout).not.toContain("Wr0ngPw");
    const both = await runCli(["session", "import", jsonlDir, "--store", "postgres", "--to", dir], { SKEIN_DATABASE_URL: url });
    expect(both.code).toBe(2);
  });
});
