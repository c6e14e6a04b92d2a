import { Broadcaster, OutOfRangeError } from "@skein/runtime";
import type { RunEvent, SessionEvent } from "./events.js";

/** How far a follower may fall behind before it is cut off with a resumable error. */
export const FOLLOWER_QUEUE = 4096;

/**
 * One session's event stream: numbers events, keeps the last `capacity` of
 * them for replay (a ring, so memory per session is bounded) and fans them out
 * to live followers.
 */
export class EventLog {
  private readonly ring: SessionEvent[] = [];
  private head = 0;
  private last = 0;
  private readonly live = new Broadcaster<SessionEvent>();

  constructor(
    readonly sessionId: string,
    private readonly capacity: number,
    /** Where numbering resumes when the session's log was dropped before (seq never goes back). */
    startSeq = 0,
  ) {
    this.last = startSeq;
  }

  get lastSeq(): number {
    return this.last;
  }

  get followers(): number {
    return this.live.size;
  }

  publish(requestId: string, event: RunEvent): SessionEvent {
    const e: SessionEvent = { seq: ++this.last, requestId, sessionId: this.sessionId, event };
    if (this.ring.length < this.capacity) this.ring.push(e);
    else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
    this.live.publish(e);
    return e;
  }

  /**
   * Events after `afterSeq`: the buffered ones, then live ones, without gap or
   * repeat. Throws OUT_OF_RANGE at once when the cursor cannot be served.
   */
  follow(afterSeq: number, signals: AbortSignal[]): AsyncIterable<SessionEvent> {
    this.checkCursor(afterSeq);
    return this.iterate(afterSeq, signals);
  }

  /** Live events only (Reply subscribes before its run starts). Subscribed now, not at first next(). */
  subscribe(signals: AbortSignal[]): AsyncIterable<SessionEvent> {
    return this.live.subscribe(signals, FOLLOWER_QUEUE, this.overflowMessage());
  }

  /** Ends every follower. */
  close(): void {
    this.live.close();
  }

  private async *iterate(afterSeq: number, signals: AbortSignal[]): AsyncGenerator<SessionEvent> {
    // Snapshot and subscription in one synchronous step: nothing can slip between them.
    const sub = this.live.subscribe(signals, FOLLOWER_QUEUE, this.overflowMessage());
    const buffered = this.buffered().filter((e) => e.seq > afterSeq);
    let sent = afterSeq;
    for (const e of buffered) {
      sent = e.seq;
      yield e;
    }
    for await (const e of sub) {
      if (e.seq <= sent) continue;
      sent = e.seq;
      yield e;
    }
  }

  private buffered(): SessionEvent[] {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  private checkCursor(afterSeq: number): void {
    if (afterSeq > this.last) {
      throw new OutOfRangeError(
        `after_seq ${afterSeq} is ahead of session ${this.sessionId}'s last event ${this.last} (sequence numbers restart with the service); reload the session with GetSession and watch from its last_seq`,
      );
    }
    const oldest = this.ring.length < this.capacity ? this.ring[0]?.seq : this.ring[this.head]!.seq;
    if (oldest !== undefined && afterSeq < oldest - 1) {
      throw new OutOfRangeError(
        `events after seq ${afterSeq} of session ${this.sessionId} are no longer buffered (oldest kept: ${oldest}); reload the session with GetSession and watch from its last_seq`,
      );
    }
  }

  private overflowMessage(): string {
    return `fell more than ${FOLLOWER_QUEUE} events behind session ${this.sessionId}; the run goes on: resume with WatchSession from the last seq received`;
  }
}
