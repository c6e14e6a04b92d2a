import type pg from "pg";
import { checkLease, heldSessionRow, type RunLease } from "./run-fence.js";

/** Sessions remembered; beyond this the oldest is forgotten (its next fingerprint is a new one: a reload, never a stale copy). */
const MAX_TRACKED = 10_000;

/**
 * Lets a session's fingerprint survive this replica's own leased writes, so a
 * live agent's kept history is reused after its own reply instead of reloaded
 * (see SessionHistory). Every write to a session updates its sessions row in
 * the write's transaction, so the row's xmin names the last writer. A write of
 * ours that found the row at the xmin we last answered for, and left it at its
 * own transaction id, keeps that answer; any other writer (another replica,
 * an unleased write) leaves an xmin we never mapped: a new fingerprint.
 */
export class OwnWrites {
  private readonly seen = new Map<string, { readonly xmin: string; readonly answer: string }>();

  /** The fingerprint for a raw "xmin:count:max" reading. */
  answer(id: string, raw: string): string {
    const xmin = raw.slice(0, raw.indexOf(":"));
    const t = this.seen.get(id);
    if (t && t.xmin === xmin) return t.answer;
    this.remember(id, xmin, raw);
    return raw;
  }

  /** The answer our own writes kept since it was given (see SessionStore.ownFingerprint); undefined when a write broke the chain. */
  known(id: string): string | undefined {
    return this.seen.get(id)?.answer;
  }

  /** After our write committed: it found the row at `prev` and left it at `own`. */
  wrote(id: string, w: LockedForWrite | undefined): void {
    const t = this.seen.get(id);
    if (w && t && t.xmin === w.prev) this.remember(id, w.own, t.answer);
    else this.seen.delete(id);
  }

  /** A write we cannot account for (unleased, a delete): the next fingerprint is a new one. */
  forget(id: string): void {
    this.seen.delete(id);
  }

  private remember(id: string, xmin: string, answer: string): void {
    this.seen.delete(id);
    this.seen.set(id, { xmin, answer });
    if (this.seen.size > MAX_TRACKED) this.seen.delete(this.seen.keys().next().value!);
  }
}

/** The session row's xmin before our write and our transaction's id (its xmin after). */
export interface LockedForWrite {
  readonly prev: string;
  readonly own: string;
}

/**
 * Inside a leased write's transaction, one statement: the lease checked (FOR
 * SHARE keeps a takeover from committing until this write has) and the
 * session row locked (FOR UPDATE waits for any other writer and reads the
 * version it left). Undefined when the session does not exist (the write then
 * reports it); LeaseLostError when the lease no longer holds.
 */
export async function lockForWrite(c: pg.ClientBase, lease: RunLease): Promise<LockedForWrite | undefined> {
  const r = await c.query<{ prev: string; own: string }>(
    heldSessionRow("s.xmin::text AS prev, pg_current_xact_id()::xid::text AS own"),
    [lease.sessionId, lease.leaseId],
  );
  if (r.rows[0]) return r.rows[0];
  await checkLease(c, lease);
  return undefined;
}

/**
 * lockForWrite returning the locked session row too (a read-modify-write of
 * its metadata): one statement instead of two. Undefined when the session
 * does not exist; LeaseLostError when the lease no longer holds.
 */
export async function lockRowForWrite(c: pg.ClientBase, lease: RunLease): Promise<{ locked: LockedForWrite; row: Record<string, unknown> } | undefined> {
  const r = await c.query<Record<string, unknown> & { skein_prev: string; skein_own: string }>(
    heldSessionRow("s.*, s.xmin::text AS skein_prev, pg_current_xact_id()::xid::text AS skein_own"),
    [lease.sessionId, lease.leaseId],
  );
  const found = r.rows[0];
  if (!found) {
    await checkLease(c, lease);
    return undefined;
  }
  const { skein_prev: prev, skein_own: own, ...row } = found;
  return { locked: { prev, own }, row };
}
