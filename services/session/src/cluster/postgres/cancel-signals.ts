import type { PgListener } from "./listener.js";
import { CANCEL_CHANNEL, type RunLease, type RunLeases } from "./run-lease.js";

/**
 * Delivers a CancelReply made on any replica to the replica running the run:
 * at once through the cancel notification, and within `pollMs` through a
 * poll of the cancel_requested column when a notification was lost (one query
 * per replica, for all its runs, only while it has runs).
 */
export class CancelSignals {
  private readonly watched = new Map<string, { lease: RunLease; fire: () => void }>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly leases: RunLeases,
    listener: PgListener,
    /** This replica's id: the owner of its leases. */
    private readonly owner: string,
    private readonly pollMs = 500,
  ) {
    listener.on(CANCEL_CHANNEL, (sessionId) => {
      if (this.watched.has(sessionId)) void this.check();
    });
  }

  /** Calls `onCancel` once when a cancel for this lease's run arrives; returns the unwatch function. */
  watch(lease: RunLease, onCancel: () => void): () => void {
    let fired = false;
    const entry = {
      lease,
      fire: () => {
        if (fired) return;
        fired = true;
        unwatch();
        onCancel();
      },
    };
    const unwatch = () => {
      if (this.watched.get(lease.sessionId) === entry) this.watched.delete(lease.sessionId);
      if (this.watched.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
    this.watched.set(lease.sessionId, entry);
    this.timer ??= setInterval(() => void this.check(), this.pollMs);
    return unwatch;
  }

  private async check(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const c of await this.leases.cancelRequested(this.owner)) {
        const w = this.watched.get(c.sessionId);
        if (w && w.lease.requestId === c.requestId) w.fire();
      }
    } catch {
      // the database is unreachable for a moment: the next poll asks again
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watched.clear();
  }
}
