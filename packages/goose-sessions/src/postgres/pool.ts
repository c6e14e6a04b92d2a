import { createHash } from "node:crypto";
import pg from "pg";
import type { Logger } from "@skein/runtime";
import { redactUrl, redactorFor } from "./database-url.js";

/** int8 (BIGINT, COUNT) as a JS number: seqs and token counts stay far below 2^53. */
pg.types.setTypeParser(20, (v) => Number(v));

export interface PoolOptions {
  /** application_name the server shows for these connections (pg_stat_activity). */
  readonly applicationName: string;
  readonly max?: number;
  /** How long getting a connection may take (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** How long one query may take on the client side (default: no limit). */
  readonly queryTimeoutMs?: number;
}

/**
 * A connection pool whose errors are logged with the URL's password masked.
 * An idle connection the server drops emits 'error' on the pool; without a
 * listener that would crash the process.
 */
export function createPool(url: string, log: Logger, opts: PoolOptions): pg.Pool {
  const redact = redactorFor(url);
  const pool = new pg.Pool({
    connectionString: url,
    application_name: opts.applicationName,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    ...(opts.queryTimeoutMs ? { query_timeout: opts.queryTimeoutMs } : {}),
  });
  pool.on("error", (err) => log.warn({ database: redactUrl(url), reason: redact(err.message) }, "an idle database connection failed; the pool replaces it"));
  return pool;
}

/** An error whose message may quote the URL, with the password masked (for logs and start-up errors). */
export function redactError(url: string, err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const out = new Error(redactorFor(url)(e.message));
  out.name = e.name;
  // The code (SQLSTATE or errno) says what kind of failure it was (store-faults.ts).
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") Object.assign(out, { code });
  return out;
}

const preparedNames = new Map<string, string>();

/**
 * A named statement: each connection parses and plans it once, later runs
 * only bind and execute (parsing and planning were about half of the
 * database's CPU per reply). Only for SQL whose text is fixed (or takes few
 * forms): every name stays prepared on each pooled connection for its life.
 */
export function prepared(text: string): { readonly name: string; readonly text: string } {
  let name = preparedNames.get(text);
  if (name === undefined) preparedNames.set(text, (name = `skein_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`));
  return { name, text };
}

/** Runs `fn` in one transaction on one connection; rolls back on any error. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken = false;
  try {
    await c.query("BEGIN");
    try {
      const out = await fn(c);
      await c.query("COMMIT");
      return out;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw err;
    }
  } catch (err) {
    if (isConnectionError(err)) broken = true;
    throw err;
  } finally {
    c.release(broken);
  }
}

/** Errors that leave the connection unusable (not SQL errors, which carry a SQLSTATE code). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code);
}
