import { randomUUID } from "node:crypto";
import type pg from "pg";
import { FailedPreconditionError } from "@skein/runtime";
import { inTransaction, prepared, type RunLease } from "@skein/goose-sessions/postgres";

// The fence every leased write checks (the lease's identity, LeaseLostError, checkLease) is
// the store's (session_runs is in its schema): re-exported here beside the lease lifecycle.
export { checkLease, LeaseLostError, type RunLease } from "@skein/goose-sessions/postgres";

/** The run a takeover replaced: its replica stopped renewing (died); phase 2 declares it interrupted. */
export interface TakenOver {
  readonly requestId: string;
  readonly owner: string;
}

export interface Acquired {
  readonly lease: RunLease;
  readonly tookOver?: TakenOver;
}

export interface RenewResult {
  /** False when the lease was released or taken over: the run must stop writing. */
  readonly held: boolean;
  /** A CancelReply on some replica asked this run to stop. */
  readonly cancelRequested: boolean;
}

/** What a second Reply gets while a run holds the session (the same words as the one-process rule). */
export class SessionBusyError extends FailedPreconditionError {
  constructor(readonly sessionId: string, readonly requestId: string) {
    super(`session ${sessionId} is busy with request ${requestId}; wait for it or cancel it with CancelReply`);
  }
}

const TAKE = prepared(
  `INSERT INTO session_runs (session_id, request_id, lease_id, owner, lease_expires_at)
   VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond') ON CONFLICT (session_id) DO NOTHING`,
);

export class RunLeases {
  constructor(
    private readonly pool: pg.Pool,
    /** SKEIN_RUN_LEASE_MS: how long a lease lives without renewal. */
    readonly leaseMs: number,
  ) {}

  /**
   * Takes the session for a run. A held, unexpired lease → SessionBusyError
   * naming the holder's request. An expired one is taken over (one
   * conditional UPDATE, so of N racers exactly one wins) and reported in
   * `tookOver`.
   */
  async acquire(sessionId: string, requestId: string, owner: string): Promise<Acquired> {
    const leaseId = randomUUID();
    const lease: RunLease = { sessionId, requestId, leaseId, owner };
    for (;;) {
      const inserted = await this.pool.query({ ...TAKE, values: [sessionId, requestId, leaseId, owner, this.leaseMs] });
      if (inserted.rowCount === 1) return { lease };
      const taken = await inTransaction(this.pool, async (c) => {
        const r = await c.query<{ request_id: string; owner: string; expired: boolean }>(
          "SELECT request_id, owner, lease_expires_at <= now() AS expired FROM session_runs WHERE session_id = $1 FOR UPDATE",
          [sessionId],
        );
        const held = r.rows[0];
        if (!held) return "gone" as const;
        if (!held.expired) throw new SessionBusyError(sessionId, held.request_id);
        await c.query(
          `UPDATE session_runs SET request_id = $2, lease_id = $3, owner = $4, started_at = now(), cancel_requested = FALSE,
           lease_expires_at = now() + $5 * interval '1 millisecond' WHERE session_id = $1`,
          [sessionId, requestId, leaseId, owner, this.leaseMs],
        );
        return { requestId: held.request_id, owner: held.owner };
      });
      // Released between the insert and the select: try the insert again.
      if (taken === "gone") continue;
      return { lease, tookOver: taken };
    }
  }

  /**
   * The sweeper's step: takes the session over only when its lease expired,
   * never creating a hold where there is none (so a Reply arriving meanwhile
   * is not refused because of a sweep). Of concurrent takers exactly one gets
   * the row (the row lock, and the expiry re-checked after it); undefined for the others.
   */
  async takeOverExpired(sessionId: string, requestId: string, owner: string): Promise<Acquired | undefined> {
    const leaseId = randomUUID();
    const r = await this.pool.query<{ request_id: string; owner: string }>(
      `WITH old AS (SELECT request_id, owner FROM session_runs WHERE session_id = $1 AND lease_expires_at <= now() FOR UPDATE)
       UPDATE session_runs r SET request_id = $2, lease_id = $3, owner = $4, started_at = now(), cancel_requested = FALSE,
       lease_expires_at = now() + $5 * interval '1 millisecond' FROM old WHERE r.session_id = $1 RETURNING old.request_id, old.owner`,
      [sessionId, requestId, leaseId, owner, this.leaseMs],
    );
    const old = r.rows[0];
    return old && { lease: { sessionId, requestId, leaseId, owner }, tookOver: { requestId: old.request_id, owner: old.owner } };
  }

  /** Extends the lease; also reports a cancel request, so renewal doubles as the cancel poll. */
  async renew(lease: RunLease): Promise<RenewResult> {
    const r = await this.pool.query<{ cancel_requested: boolean }>(
      `UPDATE session_runs SET lease_expires_at = now() + $3 * interval '1 millisecond'
       WHERE session_id = $1 AND lease_id = $2 RETURNING cancel_requested`,
      [lease.sessionId, lease.leaseId, this.leaseMs],
    );
    const row = r.rows[0];
    return { held: row !== undefined, cancelRequested: row?.cancel_requested ?? false };
  }

  /**
   * Renews every lease of `owner` among `leaseIds` in one statement (one round
   * trip per replica per interval, however many runs it has). Resolves with
   * the leases still held and whether each has a cancel pending.
   */
  async renewAll(owner: string, leaseIds: readonly string[]): Promise<Map<string, { cancelRequested: boolean }>> {
    if (leaseIds.length === 0) return new Map();
    const r = await this.pool.query<{ lease_id: string; cancel_requested: boolean }>(
      `UPDATE session_runs SET lease_expires_at = now() + $3 * interval '1 millisecond'
       WHERE owner = $1 AND lease_id = ANY($2::uuid[]) RETURNING lease_id, cancel_requested`,
      [owner, leaseIds, this.leaseMs],
    );
    return new Map(r.rows.map((row) => [row.lease_id, { cancelRequested: row.cancel_requested }]));
  }

  /** Ends the run's hold; false when it no longer held the session (also when its last events already ended it: no round trip then). */
  async release(lease: RunLease): Promise<boolean> {
    if (endedWithEvents.has(lease)) return false;
    const r = await this.pool.query("DELETE FROM session_runs WHERE session_id = $1 AND lease_id = $2", [lease.sessionId, lease.leaseId]);
    return r.rowCount === 1;
  }

  /** The run holding the session now, if any (for CancelReply's and GetSession's answers). */
  async holder(sessionId: string): Promise<{ requestId: string; owner: string; expired: boolean; cancelRequested: boolean } | undefined> {
    const r = await this.pool.query<{ request_id: string; owner: string; expired: boolean; cancel_requested: boolean }>(
      "SELECT request_id, owner, lease_expires_at <= now() AS expired, cancel_requested FROM session_runs WHERE session_id = $1",
      [sessionId],
    );
    const row = r.rows[0];
    return row && { requestId: row.request_id, owner: row.owner, expired: row.expired, cancelRequested: row.cancel_requested };
  }

  /**
   * Marks the session's run (only `requestId`'s when given) as to be
   * cancelled; the owner sees it at its next renewal or poll, or at once via
   * the cancel notification (see CancelSignals). Resolves with the request
   * that was asked to stop, or undefined when no (such) run holds the session.
   */
  async requestCancel(sessionId: string, requestId?: string): Promise<string | undefined> {
    const r = await this.pool.query<{ request_id: string }>(
      "UPDATE session_runs SET cancel_requested = TRUE WHERE session_id = $1 AND ($2::text IS NULL OR request_id = $2) RETURNING request_id",
      [sessionId, requestId ?? null],
    );
    const id = r.rows[0]?.request_id;
    if (id !== undefined) await this.pool.query("SELECT pg_notify($1, $2)", [CANCEL_CHANNEL, sessionId]);
    return id;
  }

  /** Leases of `owner` with a pending cancel: the fallback poll when a notification was lost. */
  async cancelRequested(owner: string): Promise<{ sessionId: string; requestId: string }[]> {
    const r = await this.pool.query<{ session_id: string; request_id: string }>(
      "SELECT session_id, request_id FROM session_runs WHERE owner = $1 AND cancel_requested",
      [owner],
    );
    return r.rows.map((row) => ({ sessionId: row.session_id, requestId: row.request_id }));
  }

  /** Runs whose replica stopped renewing: candidates for takeover (interruption) by any replica. */
  async expired(limit = 100): Promise<{ sessionId: string; requestId: string; owner: string }[]> {
    const r = await this.pool.query<{ session_id: string; request_id: string; owner: string }>(
      "SELECT session_id, request_id, owner FROM session_runs WHERE lease_expires_at <= now() ORDER BY lease_expires_at LIMIT $1",
      [limit],
    );
    return r.rows.map((row) => ({ sessionId: row.session_id, requestId: row.request_id, owner: row.owner }));
  }

  /** Live runs per replica, for GetStats' cluster totals. */
  async activeRuns(): Promise<number> {
    const r = await this.pool.query<{ n: number }>("SELECT COUNT(*) AS n FROM session_runs WHERE lease_expires_at > now()");
    return r.rows[0]?.n ?? 0;
  }
}

/**
 * Leases whose row a committed append already deleted (PgEventLog.append with
 * `release`: a run's `finished`): releasing one again would delete nothing,
 * so release() skips the statement.
 */
const endedWithEvents = new WeakSet<RunLease>();

/** The lease's row was deleted by a committed statement. */
export function markReleased(lease: RunLease): void {
  endedWithEvents.add(lease);
}

/** The NOTIFY channel for cancel requests; the payload is the session id only. */
export const CANCEL_CHANNEL = "skein_cancel";
