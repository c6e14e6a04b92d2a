import type pg from "pg";
import { OutOfRangeError } from "@skein/runtime";
import { prepared } from "@skein/goose-sessions/postgres";
import { LeaseLostError, markReleased, type RunLease } from "./run-lease.js";

/** The NOTIFY channel telling listeners a session has new events; the payload is the session id only ("read again"). */
export const EVENTS_CHANNEL = "skein_events";

export interface StoredEvent {
  readonly seq: number;
  readonly requestId: string;
  /** The encoded SessionEvent, as the run produced it. */
  readonly event: Buffer;
}

/**
 * The append statement, by how the writer holds the session ($7: its lease id).
 * `held` yields a row only while the lease holds: FOR SHARE keeps a takeover
 * (which updates the row) from committing until this append has; deleting the
 * row (release) locks it the same way. Without a row nothing is written.
 * Data-modifying CTEs share one snapshot, so the trim cannot see this batch's
 * rows: those already beyond the window are simply not inserted.
 */
const appendStatement = (held: string) => `
WITH held AS (${held}),
next AS (
  INSERT INTO session_seq (session_id, last_seq) SELECT $1, $2::bigint WHERE EXISTS (SELECT 1 FROM held)
  ON CONFLICT (session_id) DO UPDATE SET last_seq = session_seq.last_seq + $2::bigint RETURNING last_seq
),
added AS (
  INSERT INTO session_events (session_id, seq, request_id, event)
  SELECT $1, next.last_seq - $2::bigint + t.n, $3, t.e FROM next, unnest($4::bytea[]) WITH ORDINALITY AS t(e, n)
  WHERE next.last_seq - $2::bigint + t.n > next.last_seq - $5::bigint
),
trimmed AS (
  DELETE FROM session_events WHERE session_id = $1 AND seq <= (SELECT last_seq FROM next) - $5::bigint
)
SELECT last_seq, pg_notify($6, $1) FROM next`;
const APPEND = prepared(appendStatement("SELECT 1"));
const APPEND_LEASED = prepared(appendStatement("SELECT 1 FROM session_runs WHERE session_id = $1 AND lease_id = $7::uuid FOR SHARE"));
const APPEND_RELEASING = prepared(appendStatement("DELETE FROM session_runs WHERE session_id = $1 AND lease_id = $7::uuid RETURNING 1"));

/**
 * A session's events, numbered by the database and kept for replay in a
 * bounded window, shared by every replica. The seq counter lives in
 * session_seq and is advanced inside the appending transaction: its row lock
 * orders concurrent appends, so events commit in seq order (a reader never
 * sees seq n+1 before n) and a seq is never handed out twice, across restarts too.
 */
export class PgEventLog {
  constructor(
    private readonly pool: pg.Pool,
    /** SKEIN_EVENT_BUFFER: events kept per session. */
    readonly window: number,
  ) {}

  /**
   * Appends a batch (e.g. buffered text deltas) in one statement, so one round
   * trip: the writer's lease is checked (or, with `release`, ended: the run's
   * last events and the end of its hold commit together, so whoever sees
   * `finished` can start the next run), the seq counter advanced, the events
   * inserted, the window trimmed, and listeners notified on commit. Resolves
   * with the seqs given, in order; LeaseLostError when the lease no longer holds.
   */
  async append(sessionId: string, requestId: string, events: readonly Buffer[], lease?: RunLease, opts: { release?: boolean } = {}): Promise<number[]> {
    if (events.length === 0) return [];
    const params: unknown[] = [sessionId, events.length, requestId, events, this.window, EVENTS_CHANNEL];
    if (lease) params.push(lease.leaseId);
    const r = await this.pool.query<{ last_seq: number }>({ ...(lease ? (opts.release ? APPEND_RELEASING : APPEND_LEASED) : APPEND), values: params });
    if (r.rows.length === 0) throw new LeaseLostError(lease!);
    if (lease && opts.release) markReleased(lease);
    const last = r.rows[0]!.last_seq;
    return events.map((_, i) => last - events.length + 1 + i);
  }

  /** The session's last seq (0 when it never had an event). */
  async lastSeq(sessionId: string): Promise<number> {
    const r = await this.pool.query<{ last_seq: number }>("SELECT last_seq FROM session_seq WHERE session_id = $1", [sessionId]);
    return r.rows[0]?.last_seq ?? 0;
  }

  /**
   * Events after `afterSeq`, oldest first, at most `limit`. The same cursor
   * rules as the one-process log: a cursor ahead of the last seq, or one whose
   * next event has left the window, gets OUT_OF_RANGE "reload". Read in one
   * snapshot (REPEATABLE READ) so the check and the rows agree.
   */
  async readAfter(sessionId: string, afterSeq: number, limit = 1000): Promise<StoredEvent[]> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        const head = await c.query<{ last_seq: number | null; oldest: number | null }>(
          "SELECT (SELECT last_seq FROM session_seq WHERE session_id = $1) AS last_seq, (SELECT MIN(seq) FROM session_events WHERE session_id = $1) AS oldest",
          [sessionId],
        );
        const last = head.rows[0]?.last_seq ?? 0;
        const oldest = head.rows[0]?.oldest ?? last + 1;
        checkCursor(sessionId, afterSeq, last, oldest);
        const rows = await c.query<{ seq: number; request_id: string; event: Buffer }>(
          "SELECT seq, request_id, event FROM session_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
          [sessionId, afterSeq, limit],
        );
        return rows.rows.map((row) => ({ seq: row.seq, requestId: row.request_id, event: row.event }));
      } finally {
        await c.query("COMMIT");
      }
    } finally {
      c.release();
    }
  }

  /** Forgets a deleted session's events; its seq counter stays, so a reused id never repeats a seq. */
  async forget(sessionId: string): Promise<void> {
    await this.pool.query("DELETE FROM session_events WHERE session_id = $1", [sessionId]);
  }
}

/** OUT_OF_RANGE "reload" when the events after the cursor cannot all be served. */
export function checkCursor(sessionId: string, afterSeq: number, last: number, oldest: number): void {
  if (afterSeq > last) {
    throw new OutOfRangeError(
      `after_seq ${afterSeq} is ahead of session ${sessionId}'s last event ${last}; reload the session with GetSession and watch from its last_seq`,
    );
  }
  if (afterSeq < last && afterSeq + 1 < oldest) {
    throw new OutOfRangeError(
      `events after seq ${afterSeq} of session ${sessionId} are no longer buffered (oldest kept: ${oldest}); reload the session with GetSession and watch from its last_seq`,
    );
  }
}
