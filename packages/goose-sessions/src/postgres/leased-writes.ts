import type pg from "pg";
import { NotFoundError } from "@skein/runtime";
import { checkLease, heldSessionRow, type RunLease } from "./run-fence.js";
import type { GooseMetadata } from "../goose-format/messages.js";
import type { PreparedMessage } from "../goose-rows/messages.js";
import { metadataOfRow, type Row } from "../goose-rows/rows.js";
import type { LockedForWrite } from "./own-writes.js";
import { prepared } from "./pool.js";
import { asGooseRow, messagesInsert, rowSets } from "./session-rows.js";

/**
 * A run's writes (under its lease) as single statements: each is its own
 * transaction, so a write costs no BEGIN/COMMIT round trips and is all or
 * nothing. Each checks the lease in the statement that writes (FOR SHARE
 * keeps a takeover from committing until the write has), so a write under a
 * lost lease writes nothing; when a statement finds no row, checkLease in a
 * fresh snapshot tells a lost lease (LeaseLostError) from a missing session.
 */

/** What a leased write returns, and what it wrote (undefined: nothing) for OwnWrites. */
export interface LeasedWrite<T> {
  readonly value: T;
  readonly locked: LockedForWrite | undefined;
}

const READ_ROW_VERSION = prepared(
  "SELECT s.*, s.xmin::text AS skein_prev, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS skein_message_count FROM sessions s WHERE s.id = $1",
);

/** Optimistic rounds of a metadata update before the caller takes the row lock in a transaction instead. */
const OPTIMISTIC_ROUNDS = 3;

/**
 * A message append: lockForWrite, the session's `updated_at` bumped and the
 * messages inserted in one statement; NotFoundError when the session does not
 * exist. The raised created_timestamp floor is read in the statement's
 * snapshot, taken before the row lock is waited for; it still sees every
 * earlier message: earlier holders' writes committed before this lease could
 * be taken (they hold its row FOR SHARE, a takeover or release waits for
 * them), and a run's appends follow one another.
 */
export async function appendLeased(pool: pg.Pool, lease: RunLease, ps: readonly PreparedMessage[]): Promise<LeasedWrite<void>> {
  const insert = messagesInsert(ps, true, 3, "EXISTS (SELECT 1 FROM touched)");
  const r = await pool.query<{ prev: string; own: string }>({
    // The same text for every append: prepared once per connection.
    ...prepared(`WITH held AS (${heldSessionRow("s.id, s.xmin::text AS prev, pg_current_xact_id()::xid::text AS own")}),
     touched AS (UPDATE sessions s SET updated_at = now() FROM held WHERE s.id = held.id RETURNING held.prev, held.own),
     added AS (${insert.sql})
     SELECT prev, own FROM touched`),
    values: [lease.sessionId, lease.leaseId, ...insert.params],
  });
  if (r.rows[0]) return { value: undefined, locked: r.rows[0] };
  // A fresh snapshot (the statement's may predate a takeover): lost lease or no session.
  await checkLease(pool, lease);
  throw new NotFoundError(`session ${lease.sessionId} does not exist`);
}

/**
 * A read-modify-write of the session's metadata in two statements: the row
 * read (with its xmin and the message count, one snapshot), `update` applied,
 * then the changed columns written by one statement that also checks the
 * lease and that the row is still the version read (its xmin: every write of
 * a session updates its row). Another writer in between: read again, at most
 * OPTIMISTIC_ROUNDS times, then "contended" (the caller locks the row in a
 * transaction). `update` may so run more than once; it computes from `current`.
 * Undefined when the session does not exist; nothing written when nothing
 * changed (the lease is checked all the same); LeaseLostError when the lease
 * no longer holds.
 */
export async function updateMetadataLeased(
  pool: pg.Pool,
  lease: RunLease,
  update: (current: GooseMetadata) => GooseMetadata,
): Promise<LeasedWrite<GooseMetadata | undefined | "contended">> {
  for (let round = 0; round < OPTIMISTIC_ROUNDS; round++) {
    const r = await pool.query<Row & { skein_prev: string; skein_message_count: number }>({ ...READ_ROW_VERSION, values: [lease.sessionId] });
    const found = r.rows[0];
    if (!found) {
      await checkLease(pool, lease);
      return { value: undefined, locked: undefined };
    }
    const { skein_prev: prev, skein_message_count: count, ...raw } = found;
    const row = asGooseRow(raw);
    const current = metadataOfRow(row, count).metadata;
    const next = update(current);
    const set = rowSets(row, current, next, false, 4);
    if (!set) {
      await checkLease(pool, lease);
      return { value: next, locked: undefined };
    }
    const w = await pool.query<{ own: string }>(
      `WITH held AS (${heldSessionRow("s.id, pg_current_xact_id()::xid::text AS own", " AND s.xmin = $3::xid")})
       UPDATE sessions s SET ${set.sql} FROM held WHERE s.id = held.id RETURNING held.own`,
      [lease.sessionId, lease.leaseId, prev, ...set.params],
    );
    if (w.rows[0]) return { value: next, locked: { prev, own: w.rows[0].own } };
    // Lost lease → LeaseLostError; else another writer moved the row (or deleted it): read again.
    await checkLease(pool, lease);
  }
  return { value: "contended", locked: undefined };
}
