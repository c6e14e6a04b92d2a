import { CancelledError, FailedPreconditionError, type Logger } from "@skein/runtime";
import type { DeleteHold, RunClaim, RunOwnership } from "../coordination/run-ownership.js";
import type { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import type { LeaseKeeper } from "./postgres/lease-keeper.js";
import type { CancelSignals } from "./postgres/cancel-signals.js";
import { SessionBusyError, type RunLease, type RunLeases } from "./postgres/run-lease.js";
import { declareInterrupted, type InterruptDeps } from "./interrupt.js";

export interface LeasedOwnershipDeps extends InterruptDeps {
  readonly store: PostgresSessionStore;
  readonly leases: RunLeases;
  readonly keeper: LeaseKeeper;
  readonly cancels: CancelSignals;
  /** This replica's id: the owner of its leases. */
  readonly owner: string;
  /** Settles once every event the session's run published here is written. */
  readonly drained: (sessionId: string) => Promise<void>;
  readonly log: Logger;
}

interface Held {
  readonly lease: RunLease;
  readonly stop: AbortController;
}

/**
 * One run per session across replicas, held by the database: a claim is a
 * lease row (RunLeases), renewed by the keeper while the work runs. A second
 * claim on any replica is FAILED_PRECONDITION "busy". The claim's store
 * refuses writes once the lease is lost; its signal aborts when the lease is
 * lost or a CancelReply on any replica asks the run to stop. A lease that
 * expired (its replica died) is taken over, and its run declared interrupted
 * before the new one starts.
 */
export class LeasedRunOwnership implements RunOwnership {
  private readonly held = new Map<string, Held>();
  private readonly ending = new Set<Promise<void>>();

  constructor(private readonly deps: LeasedOwnershipDeps) {}

  /** The lease this replica holds on the session now. */
  leaseOf(sessionId: string): RunLease | undefined {
    return this.held.get(sessionId)?.lease;
  }

  /** Stops the run holding `lease` here (its lease is gone, or its events cannot be written). */
  lost(lease: RunLease, reason: string): void {
    const h = this.held.get(lease.sessionId);
    if (h?.lease.leaseId === lease.leaseId) h.stop.abort(new CancelledError(`request ${lease.requestId} stopped: ${reason}`));
  }

  async claim(sessionId: string, label: string): Promise<RunClaim> {
    const { leases, owner, store, keeper, cancels } = this.deps;
    const { lease, tookOver } = await leases.acquire(sessionId, label, owner);
    if (tookOver) {
      try {
        await declareInterrupted(this.deps, lease, tookOver);
      } catch (err) {
        await leases.release(lease).catch(() => undefined);
        throw err;
      }
    }
    const held: Held = { lease, stop: new AbortController() };
    this.held.set(sessionId, held);
    const unkeep = keeper.keep(lease, () => this.lost(lease, "its lease was taken over"));
    const unwatch = cancels.watch(lease, () => held.stop.abort(new CancelledError(`request ${label} was cancelled from another replica`)));
    let released = false;
    return {
      label,
      seqAfter: 0,
      store: store.withLease(lease),
      signal: held.stop.signal,
      release: () => {
        if (released) return;
        released = true;
        unkeep();
        unwatch();
        const done = this.end(held).finally(() => this.ending.delete(done));
        this.ending.add(done);
      },
    };
  }

  /**
   * DeleteSession: holds the session while it is deleted. A run on another
   * replica is asked to cancel, and the delete waits for it to end (at most
   * about one lease period: a dead replica's lease is taken over meanwhile);
   * one that still holds the session then is reported busy.
   */
  async claimForDelete(sessionId: string): Promise<DeleteHold> {
    const { leases, owner } = this.deps;
    const deadline = Date.now() + leases.leaseMs + 2_000;
    let asked = false;
    for (;;) {
      try {
        const { lease } = await leases.acquire(sessionId, "delete", owner);
        return { release: () => void leases.release(lease).catch(() => undefined) };
      } catch (err) {
        if (!(err instanceof SessionBusyError)) throw err;
        if (Date.now() > deadline) {
          throw new FailedPreconditionError(`session ${sessionId} is busy with request ${err.requestId}, which did not stop after a cancel; try DeleteSession again`);
        }
        if (!asked) asked = (await leases.requestCancel(sessionId)) !== undefined;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Waits for every run's end to be recorded and its lease released (shutdown). */
  async drain(): Promise<void> {
    while (this.ending.size > 0) await Promise.all([...this.ending]);
  }

  /**
   * After the run: its `finished` (published right after release) is written
   * together with the end of the lease; the release here covers work that
   * publishes nothing (a summary) and runs whose events could not be written.
   */
  private async end(held: Held): Promise<void> {
    const { sessionId } = held.lease;
    await Promise.resolve();
    try {
      await this.deps.drained(sessionId);
      await this.deps.leases.release(held.lease);
    } catch (err) {
      this.deps.log.warn({ sessionId, requestId: held.lease.requestId, reason: (err as Error).message }, "releasing a run's lease failed; it expires on its own");
    } finally {
      if (this.held.get(sessionId) === held) this.held.delete(sessionId);
    }
  }
}
