import { RepeatedFaults, type Logger } from "@skein/runtime";
import type { RunLease, RunLeases } from "./run-lease.js";

interface Kept {
  readonly lease: RunLease;
  readonly onLost: () => void;
}

/**
 * Keeps a replica's run leases alive: every `renewMs` (a third of the lease by
 * default, so two renewals may fail before the lease lapses) one statement
 * renews them all. A lease that was not renewed (taken over after this replica
 * stalled, or released elsewhere) is reported once through its onLost, and the
 * run must stop writing (its writes would be refused anyway).
 */
export class LeaseKeeper {
  private readonly kept = new Map<string, Kept>();
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  /** Renewals fail every third of a lease while the database is down: logged boundedly. */
  private readonly faults: RepeatedFaults;

  constructor(
    private readonly leases: RunLeases,
    private readonly owner: string,
    private readonly log: Logger,
    private readonly renewMs = Math.max(100, Math.floor(leases.leaseMs / 3)),
  ) {
    this.faults = new RepeatedFaults(log, "renewing run leases", "rounds");
  }

  /** Starts renewing `lease`; the returned function stops (call it before releasing the lease). */
  keep(lease: RunLease, onLost: () => void): () => void {
    if (lease.owner !== this.owner) throw new Error(`lease of ${lease.owner} kept by ${this.owner}`);
    this.kept.set(lease.leaseId, { lease, onLost });
    this.timer ??= setInterval(() => void this.renew(), this.renewMs);
    return () => this.drop(lease.leaseId);
  }

  get size(): number {
    return this.kept.size;
  }

  private drop(leaseId: string): void {
    this.kept.delete(leaseId);
    if (this.kept.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** One renewal round (also what the timer runs). */
  async renew(): Promise<void> {
    if (this.renewing || this.kept.size === 0) return;
    this.renewing = true;
    try {
      const ids = [...this.kept.keys()];
      const held = await this.leases.renewAll(this.owner, ids);
      this.faults.succeeded("renew");
      for (const id of ids) {
        const k = this.kept.get(id);
        if (!k || held.has(id)) continue;
        this.drop(id);
        this.log.warn({ sessionId: k.lease.sessionId, requestId: k.lease.requestId }, "this replica lost a run's lease (taken over or released elsewhere); the run stops");
        k.onLost();
      }
    } catch (err) {
      // The database is unreachable for a moment: the next round tries again; the lease lapses only after leaseMs.
      this.faults.failed("renew", err);
    } finally {
      this.renewing = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.kept.clear();
  }
}
