import { Broadcaster, feedOf, OutOfRangeError, steppedWaits, type Feed } from "@skein/runtime";
import type { RunEvent, SessionEvent } from "./events.js";

/** How far a follower may fall behind before it is cut off with a resumable error. */
export const FOLLOWER_QUEUE = 4096;

/**
 * The events buffered for replay across every session's log, so the total
 * stays under one cap (SKEIN_EVENT_BUFFER_TOTAL): the owner of the logs
 * releases idle windows when `over` says so.
 */
export class EventBudget {
  private held = 0;

  constructor(readonly cap: number) {}

  get total(): number {
    return this.held;
  }

  get over(): boolean {
    return this.held > this.cap;
  }

  /** @internal the logs account their ring here. */
  add(n: number): void {
    this.held += n;
  }
}

/**
 * One session's event stream: numbers events, keeps the last `capacity` of
 * them for replay (a ring, so memory per session is bounded) and fans them out
 * to live followers. A cursor is served only when every event after it is
 * still in the ring (or none came after it); otherwise OUT_OF_RANGE "reload".
 */
export class EventLog {
  private ring: SessionEvent[] = [];
  private head = 0;
  private last = 0;
  private readonly live = new Broadcaster<SessionEvent>();

  constructor(
    readonly sessionId: string,
    private readonly capacity: number,
    /** Where numbering resumes: the last seq this session had before this log (seq never goes back). */
    startSeq = 0,
    private readonly budget = new EventBudget(Number.POSITIVE_INFINITY),
  ) {
    this.last = startSeq;
  }

  /** Events buffered for replay. */
  get buffered(): number {
    return this.ring.length;
  }

  /**
   * Moves numbering forward to `seq` (a new epoch, see RunOwnership); only
   * while nothing is buffered, so no cursor in between could be served wrongly.
   */
  skipTo(seq: number): void {
    if (seq <= this.last) return;
    if (this.ring.length > 0) throw new Error(`session ${this.sessionId}: numbering cannot jump to ${seq} with events buffered`);
    this.last = seq;
  }

  /** Drops the buffered events (their memory); numbering and followers stay. */
  releaseWindow(): void {
    this.budget.add(-this.ring.length);
    this.ring = [];
    this.head = 0;
  }

  get lastSeq(): number {
    return this.last;
  }

  get followers(): number {
    return this.live.size;
  }

  publish(requestId: string, event: RunEvent): SessionEvent {
    const e: SessionEvent = { seq: ++this.last, requestId, sessionId: this.sessionId, event };
    this.keep(e);
    this.live.publish(e);
    return e;
  }

  /**
   * Events after `afterSeq`: the buffered ones, then live ones, without gap or
   * repeat. Throws OUT_OF_RANGE at once when the cursor cannot be served.
   */
  follow(afterSeq: number, signals: AbortSignal[]): Feed<SessionEvent> {
    this.checkCursor(afterSeq);
    // Snapshot and subscription in one synchronous step: nothing can slip between them.
    const live = this.subscribe(signals);
    let buffered: SessionEvent[] | undefined = this.window().filter((e) => e.seq > afterSeq);
    let sent = afterSeq;
    // Defensive, as seqs only grow: never hand out an event at or before one already sent.
    const fresh = (batch: readonly SessionEvent[] | undefined) => (batch === undefined || batch.length === 0 || batch[0]!.seq > sent ? batch : batch.filter((e) => e.seq > sent));
    const sentUpTo = (batch: readonly SessionEvent[] | undefined) => {
      if (batch !== undefined && batch.length > 0) sent = batch[batch.length - 1]!.seq;
      return batch;
    };
    const buffer = () => {
      const first = buffered;
      buffered = undefined;
      return first !== undefined && first.length > 0 ? sentUpTo(first) : undefined;
    };
    const liveStep = (batch: readonly SessionEvent[] | undefined) => sentUpTo(fresh(batch));
    // WatchSession's pump reads it without a promise per wake-up (see BatchSource.nextBatchOr).
    const waits = steppedWaits(liveStep);
    return feedOf({
      nextBatch: () => {
        const first = buffer();
        if (first !== undefined) return first;
        const next = live.nextBatch();
        return next instanceof Promise ? next.then(liveStep) : liveStep(next);
      },
      nextBatchOr: (waiter) => buffer() ?? waits.wait(live, waiter),
      close: () => live.close(),
    });
  }

  /** Live events only (Reply subscribes before its run starts). Subscribed now, not at first read. */
  subscribe(signals: AbortSignal[]): Feed<SessionEvent> {
    return this.live.subscribe(signals, FOLLOWER_QUEUE, this.overflowMessage());
  }

  /** Ends every follower and gives the buffered events back to the budget. */
  close(): void {
    this.live.close();
    this.releaseWindow();
  }

  /** Into the replay ring (the oldest event makes room once it is full). */
  private keep(e: SessionEvent): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(e);
      this.budget.add(1);
    } else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  private window(): SessionEvent[] {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  private checkCursor(afterSeq: number): void {
    if (afterSeq > this.last) {
      throw new OutOfRangeError(
        `after_seq ${afterSeq} is ahead of session ${this.sessionId}'s last event ${this.last} (a cursor from before a restart of the service); reload the session with GetSession and watch from its last_seq`,
      );
    }
    // With nothing buffered, only a cursor at the last seq is served: the events before it are gone.
    const oldest = this.ring.length === 0 ? this.last + 1 : this.ring.length < this.capacity ? this.ring[0]!.seq : this.ring[this.head]!.seq;
    if (afterSeq < oldest - 1) {
      throw new OutOfRangeError(
        `events after seq ${afterSeq} of session ${this.sessionId} are no longer buffered (${this.ring.length === 0 ? `none kept after seq ${this.last}` : `oldest kept: ${oldest}`}); reload the session with GetSession and watch from its last_seq`,
      );
    }
  }

  private overflowMessage(): string {
    return `fell more than ${FOLLOWER_QUEUE} events behind session ${this.sessionId}; the run goes on: resume with WatchSession from the last seq received`;
  }
}
