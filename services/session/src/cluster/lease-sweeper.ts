import { RepeatedFaults, type Logger } from "@skein/runtime";
import type { RunLeases } from "./postgres/run-lease.js";
import { declareInterrupted, type InterruptDeps } from "./interrupt.js";

/** The label a sweeper's short hold shows (a Reply meanwhile is busy with it for a moment). */
export const TAKEOVER_LABEL = "takeover";

/**
 * Runs on every replica: every quarter of SKEIN_RUN_LEASE_MS it looks for
 * leases nobody renewed and takes each over (one conditional update, so of
 * all sweeping replicas exactly one wins), declares the dead run interrupted
 * and lets the session go. A session whose replica died thus takes the next
 * Reply within about SKEIN_RUN_LEASE_MS × 1.25 even when nobody asks for it.
 */
export class LeaseSweeper {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly faults: RepeatedFaults;

  constructor(
    private readonly leases: RunLeases,
    private readonly owner: string,
    private readonly deps: InterruptDeps,
    private readonly log: Logger,
    everyMs = Math.max(100, Math.floor(leases.leaseMs / 4)),
  ) {
    this.faults = new RepeatedFaults(log, "sweeps for expired run leases", "sweeps");
    this.timer = setInterval(() => {
      this.running ??= this.sweep().finally(() => (this.running = undefined));
    }, everyMs);
    this.timer.unref();
  }

  async sweep(): Promise<void> {
    try {
      for (const run of await this.leases.expired()) {
        if (this.closed) return;
        await this.takeOver(run.sessionId);
      }
      this.faults.succeeded("sweep");
    } catch (err) {
      // Every quarter lease while the database is down: the first failure, then a summary a minute.
      this.faults.failed("sweep", err);
    }
  }

  private async takeOver(sessionId: string): Promise<void> {
    // Undefined: another replica (or a Reply) was first, or the run ended meanwhile.
    const acquired = await this.leases.takeOverExpired(sessionId, TAKEOVER_LABEL, this.owner);
    if (!acquired?.tookOver) return;
    try {
      await declareInterrupted(this.deps, acquired.lease, acquired.tookOver);
    } catch (err) {
      this.log.error({ sessionId, reason: (err as Error).message }, "declaring an interrupted run failed");
    } finally {
      await this.leases.release(acquired.lease);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
