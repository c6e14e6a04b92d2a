import { StorageUnavailableError, type Logger } from "@skein/runtime";
import { storeFault, type StoreTarget } from "@skein/goose-sessions";

/** Unreachable in this many probes in a row (whileDownMs apart) makes the service NOT_SERVING. */
const TRIP_AFTER = 2;

export interface StoreHealthOptions {
  /** A light check that the database answers (SELECT 1 on a connection of its own). */
  readonly probe: () => Promise<void>;
  readonly target: StoreTarget;
  /** Told every change: false while the database is unreachable. */
  readonly report: (serving: boolean) => void;
  readonly log: Logger;
  /** Between probes while the database answers. */
  readonly everyMs?: number;
  /** Between probes while it does not: its return is seen within this long (plus one probe). */
  readonly whileDownMs?: number;
}

/**
 * The session service's health follows its database: a probe every few
 * seconds (never one per request), and at once when a call met an
 * unreachable database (`suspect`); two failed probes in a row, half a second
 * apart, make it NOT_SERVING, one that answers makes it SERVING again. Only UNAVAILABLE faults make it
 * NOT_SERVING: a full or read-only database still serves reads.
 */
export class StoreHealth {
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private serving = true;
  private closed = false;
  /** Probes in a row that found the database unreachable: one alone (a stall on a loaded host) does not flip health. */
  private failures = 0;
  private readonly everyMs: number;
  private readonly whileDownMs: number;

  constructor(private readonly opts: StoreHealthOptions) {
    this.everyMs = opts.everyMs ?? 3_000;
    this.whileDownMs = opts.whileDownMs ?? 500;
    this.schedule(this.everyMs);
  }

  get isServing(): boolean {
    return this.serving;
  }

  /** A call met an unreachable database: probe now (one probe at a time, however many calls failed). */
  suspect(): void {
    if (this.closed || this.probing) return;
    this.schedule(0);
  }

  /** Probes once now and resolves when it is done (start-up, tests). */
  check(): Promise<void> {
    return (this.probing ??= this.probeOnce().finally(() => (this.probing = undefined)));
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.check().then(() => this.schedule(this.serving && this.failures === 0 ? this.everyMs : this.whileDownMs));
    }, ms);
    this.timer.unref();
  }

  private async probeOnce(): Promise<void> {
    let unreachable: StorageUnavailableError | undefined;
    try {
      await this.opts.probe();
    } catch (err) {
      const fault = storeFault(err, this.opts.target);
      // Anything else (a full disk, a bug in the probe) is not "unreachable": the calls say what it is.
      if (fault instanceof StorageUnavailableError) unreachable = fault;
      else this.opts.log.debug({ reason: (err as Error).message }, "session database probe failed without the database being unreachable");
    }
    if (this.closed) return;
    this.failures = unreachable ? this.failures + 1 : 0;
    const serving = unreachable === undefined || this.failures < TRIP_AFTER;
    if (serving === this.serving) return;
    this.serving = serving;
    // One line per change (never one per failed probe).
    if (unreachable) this.opts.log.warn({ database: this.opts.target.location, reason: unreachable.message }, "the session database is unreachable: NOT_SERVING");
    else this.opts.log.info({ database: this.opts.target.location }, "the session database answers again: SERVING");
    this.opts.report(serving);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.probing;
  }
}
