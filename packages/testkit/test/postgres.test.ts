import { existsSync, statSync } from "node:fs";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { startPostgres } from "../src/postgres.js";

describe("startPostgres", () => {
  it("runs a private cluster with password auth, a database per test, and removes everything on stop", async () => {
    const cluster = await startPostgres();
    let dir: string | undefined;
    try {
      const url = await cluster.createDatabase();
      expect(url).toContain(`:${cluster.password}@127.0.0.1:${cluster.port}/`);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const r = await c.query<{ dir: string; db: string }>("SELECT current_setting('data_directory') AS dir, current_database() AS db");
      await c.end();
      dir = r.rows[0]!.dir;
      expect(existsSync(dir)).toBe(true);
      if (process.getuid?.() === 0) expect(statSync(dir).uid).not.toBe(0);
      const wrong = new pg.Client({ connectionString: url.replace(cluster.password, "wrong") });
      await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
      await wrong.end().catch(() => undefined);
    } finally {
      await cluster.stop();
    }
    expect(dir && existsSync(dir)).toBe(false);
    await expect(new pg.Client({ connectionString: cluster.url() }).connect()).rejects.toThrow();
  });
});
