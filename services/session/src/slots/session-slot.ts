import type { SlotEventLog } from "../coordination/coordination.js";
import type { LiveAgent } from "./live-agent.js";
import type { RunClaim } from "../coordination/run-ownership.js";

/** A reply or other exclusive work (a summary) running on the session. */
export interface SlotWork {
  readonly claim: RunClaim;
  readonly stop: AbortController;
  /** Settles once the work has ended (for a reply: after `finished` was published). */
  readonly done: Promise<void>;
}

/**
 * Everything live about one session, in one place: its agent (extension
 * processes), the work running on it, its event log and last seq. Every
 * operation on the session runs under `locked`, one at a time; a reply holds
 * the lock only to start, then runs as `work` until it ends.
 *
 * State: `agent` and `log` come and go (eviction, release of the replay
 * window); `deleted` is final. `releasedSeq` is where numbering resumes once
 * the log was released.
 */
export class SessionSlot {
  agent: LiveAgent | undefined;
  /** Set while the agent is starting (counts toward the live-agent cap). */
  loadingAgent = false;
  work: SlotWork | undefined;
  log: SlotEventLog | undefined;
  releasedSeq: number;
  deleted = false;
  lastUsed = Date.now();
  // Callers inside `locked` or waiting for it: a slot with any is never evicted.
  private users = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    /** The last seq of this session's previous slot in this process (0: none). */
    keptSeq: number,
    /** Makes the session's event log, numbering on after `startSeq` (see Coordination.eventLog). */
    private readonly makeLog: (startSeq: number) => SlotEventLog,
  ) {
    this.releasedSeq = keptSeq;
  }

  get lastSeq(): number {
    return this.log?.lastSeq ?? this.releasedSeq;
  }

  /** Nobody is inside, waiting, or running work: the agent may be evicted. */
  get idle(): boolean {
    return this.users === 0 && this.work === undefined;
  }

  /** The replay window may go: no work publishes into it and no watcher reads it. */
  get windowReleasable(): boolean {
    return this.work === undefined && (this.log?.followers ?? 0) === 0;
  }

  /** Nothing is left in memory but the numbers: the slot itself may go. */
  get empty(): boolean {
    return this.idle && this.agent === undefined && !this.loadingAgent && this.log === undefined;
  }

  /** Runs `fn` once every earlier caller of this session is done. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.tail;
    let unlock!: () => void;
    this.tail = new Promise<void>((r) => (unlock = r));
    this.users++;
    try {
      await before;
      return await fn();
    } finally {
      this.users--;
      this.lastUsed = Date.now();
      unlock();
    }
  }

  events(): SlotEventLog {
    this.log ??= this.makeLog(this.releasedSeq);
    return this.log;
  }

  /** Drops the replay window when nobody needs it; numbering resumes after its last seq. */
  releaseWindow(): boolean {
    if (!this.log || !this.windowReleasable) return false;
    this.releasedSeq = this.log.lastSeq;
    this.log.close();
    this.log = undefined;
    return true;
  }
}
