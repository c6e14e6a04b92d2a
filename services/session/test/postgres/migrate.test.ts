import pg from "pg";
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATEST_SCHEMA_VERSION, migrate, SchemaTooNewError, MIGRATIONS, PostgresSessionStore } from "@skein/goose-sessions/postgres";

const log = pino({ level: "silent" });
let cluster: PostgresCluster;
beforeAll(async () => {
  cluster = await testPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});

async function withPools<T>(url: string, n: number, fn: (pools: pg.Pool[]) => Promise<T>): Promise<T> {
  const pools = Array.from({ length: n }, () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    // A connection the pool is still closing when the test cluster stops gets the
    // server's 57P01; unlistened, pg-pool re-emits it as an uncaught 'error'.
    pool.on("error", () => undefined);
    return pool;
  });
  try {
    return await fn(pools);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}

describe("schema migrations", () => {
  it("apply each step exactly once when eight processes start at once (advisory lock)", async () => {
    const url = await cluster.createDatabase();
    // A second step, so the waiting migrators have something they must not repeat.
    const steps = [...MIGRATIONS, { version: LATEST_SCHEMA_VERSION + 1, sql: "CREATE TABLE applied_once (x int)" }];
    const results = await withPools(url, 8, (pools) => Promise.all(pools.map((p) => migrate(p, log, steps))));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(results.every((r) => r.to === LATEST_SCHEMA_VERSION + 1)).toBe(true);
    const rows = await withPools(url, 1, async ([p]) => (await p!.query<{ version: number }>("SELECT version FROM schema_version ORDER BY version")).rows);
    expect(rows.map((r) => r.version)).toEqual(steps.map((s) => s.version));
  });

  it("a database newer than the code refuses to start with a clear message", async () => {
    const url = await cluster.createDatabase();
    const store = await PostgresSessionStore.open(url, log);
    await store.pool.query("INSERT INTO schema_version (version) VALUES ($1)", [LATEST_SCHEMA_VERSION + 5]);
    await store.close();
    const err = await PostgresSessionStore.open(url, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(
      `the database's skein schema is version ${LATEST_SCHEMA_VERSION + 5}, newer than this skein knows (${LATEST_SCHEMA_VERSION}); upgrade skein before pointing it at this database`,
    );
    expect(new SchemaTooNewError(2, 1).name).toBe("SchemaTooNewError");
  });

  it("a failing step leaves no trace and releases the lock", async () => {
    const url = await cluster.createDatabase();
    const bad = [...MIGRATIONS, { version: LATEST_SCHEMA_VERSION + 1, sql: "CREATE TABLE half (x int); SELECT no_such_function()" }];
    await withPools(url, 1, async ([p]) => {
      await expect(migrate(p!, log, bad)).rejects.toThrow(/no_such_function/);
      const r = await p!.query("SELECT to_regclass('half') AS t, (SELECT MAX(version) FROM schema_version) AS v");
      expect(r.rows[0]).toEqual({ t: null, v: LATEST_SCHEMA_VERSION });
      // The lock is free again: a later start migrates.
      expect((await migrate(p!, log)).applied).toEqual([]);
    });
  });
});
