import type pg from "pg";
import type { Logger } from "@skein/runtime";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from "./migrations.js";
import { isConnectionError } from "./pool.js";

/** One advisory lock key for skein's schema ("skein" in ASCII); held only while migrating. */
export const MIGRATION_LOCK_KEY = 0x736b65696e;

export class SchemaTooNewError extends Error {
  override name = "SchemaTooNewError";
  constructor(readonly found: number, readonly known: number) {
    super(`the database's skein schema is version ${found}, newer than this skein knows (${known}); upgrade skein before pointing it at this database`);
  }
}

export interface MigrationResult {
  readonly from: number;
  readonly to: number;
  readonly applied: number[];
}

/**
 * Brings the schema to the latest version. Every process takes the same
 * session-level advisory lock first, so N replicas starting at once apply each
 * step exactly once: the first migrates, the others wait and then find nothing
 * to do. Each step and its schema_version row commit in one transaction.
 */
export async function migrate(pool: pg.Pool, log: Logger, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  const known = migrations.at(-1)?.version ?? 0;
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await client.query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      const r = await client.query<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_version");
      const from = r.rows[0]?.v ?? 0;
      if (from > known) throw new SchemaTooNewError(from, known);
      const applied: number[] = [];
      for (const m of migrations) {
        if (m.version <= from) continue;
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query("INSERT INTO schema_version (version) VALUES ($1)", [m.version]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
        applied.push(m.version);
        log.info({ schemaVersion: m.version }, "applied a database schema migration");
      }
      return { from, to: Math.max(from, known), applied };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } catch (err) {
    // A SQL error was rolled back and the lock released: the connection is fine.
    broken = !(err instanceof SchemaTooNewError) && isConnectionError(err);
    throw err;
  } finally {
    // A connection left in an unknown state is not handed back to the pool.
    client.release(broken);
  }
}

export { LATEST_SCHEMA_VERSION };
