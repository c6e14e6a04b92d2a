import type pg from "pg";
import { FailedPreconditionError } from "@skein/runtime";

// The write fence lives with the store, not with the cluster code that takes and renews
// leases: session_runs is part of the store's schema (migrations.ts), and every leased
// write checks it inside the write's own transaction (own-writes.ts), so the check must be
// SQL the store runs. The lease lifecycle (acquire, renew, sweep, release, cancel) stays in
// the session service's cluster/ and imports these; the package never imports the service.

/**
 * The one-run-per-session rule across replicas, held by the database: a run
 * holds its session through a row of session_runs (primary key session_id),
 * with a lease its replica renews. Times are the database's clock (now()), so
 * replicas' clocks never need to agree.
 */
export interface RunLease {
  readonly sessionId: string;
  readonly requestId: string;
  /** Changes with every acquisition: a write carrying an old one is refused. */
  readonly leaseId: string;
  /** The replica holding it. */
  readonly owner: string;
}

/** A write by a replica whose lease was released or taken over. */
export class LeaseLostError extends FailedPreconditionError {
  constructor(readonly lease: RunLease) {
    super(`request ${lease.requestId} no longer holds session ${lease.sessionId} (its lease was taken over)`);
  }
}

/**
 * Inside a write's transaction: refuses unless `lease` still holds the
 * session. FOR SHARE keeps a takeover (which updates the row) from committing
 * until this write has, so a write either lands before a takeover or is
 * refused. On the pool: after a one-statement write found no row, whether the
 * lease is lost (LeaseLostError) or the session is gone.
 */
export async function checkLease(c: pg.ClientBase | pg.Pool, lease: RunLease): Promise<void> {
  const r = await c.query("SELECT 1 FROM session_runs WHERE session_id = $1 AND lease_id = $2 FOR SHARE", [lease.sessionId, lease.leaseId]);
  if (r.rowCount !== 1) throw new LeaseLostError(lease);
}

/**
 * The statement that fences a leased write, for its SELECT or CTE: the session
 * row while `$2` still holds session `$1`'s lease, locked (FOR UPDATE waits for
 * any other writer of the session and reads the version it left; FOR SHARE of
 * the lease row keeps a takeover from committing until this write has). No row:
 * the lease is lost or the session is gone (checkLease tells which). `also`
 * adds conditions on `s` (the sessions row) or `r` (the lease row).
 */
export function heldSessionRow(columns: string, also = ""): string {
  return `SELECT ${columns} FROM sessions s JOIN session_runs r ON r.session_id = s.id
     WHERE s.id = $1 AND r.lease_id = $2${also} FOR UPDATE OF s FOR SHARE OF r`;
}

/** The NOTIFY channel telling watchers a session was deleted (payload: its id), so they end as on one host. */
export const DELETED_CHANNEL = "skein_session_deleted";
