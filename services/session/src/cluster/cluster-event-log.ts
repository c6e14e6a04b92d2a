import { batchesOf, Broadcaster, feedOf, type BatchSource, type Feed, type Logger, type RepeatedFaults } from "@skein/runtime";
import { FOLLOWER_QUEUE } from "../runs/event-log.js";
import type { RunEvent, SessionEvent } from "../runs/events.js";
import type { SlotEventLog } from "../coordination/coordination.js";
import type { PgEventLog } from "./postgres/event-log.js";
import type { EventFollower } from "./postgres/follower.js";
import { LeaseLostError, type RunLease } from "./postgres/run-lease.js";
import { encodeEvent } from "./event-codec.js";
import { followStored } from "./follow-stream.js";

/**
 * At most this many events go into one append (one transaction), and at most
 * a quarter of the window: a watcher reading after each append is never
 * lapped by one batch.
 */
const BATCH_MAX = 256;

export interface ClusterEventLogDeps {
  readonly events: PgEventLog;
  readonly follower: EventFollower;
  /** Calls `fn` when the session is deleted on any replica; returns the unsubscribe. */
  readonly onDeleted: (sessionId: string, fn: () => void) => () => void;
  /** The lease this replica holds on the session now (the run that publishes). */
  readonly leaseOf: (sessionId: string) => RunLease | undefined;
  /** The run cannot write any more (lease lost, database gone too long): stop it. */
  readonly lost: (lease: RunLease, reason: string) => void;
  /** How long a failing append is retried before the run is given up. */
  readonly retryForMs: number;
  /** How long text deltas may wait to share an append (SKEIN_EVENT_BATCH_MS); 0: one turn of the event loop. */
  readonly batchMs: number;
  readonly log: Logger;
  /** Shared by every session's log: failing appends are logged boundedly, not once per retry per session. */
  readonly appendFaults: RepeatedFaults;
  readonly onClose: (log: ClusterEventLog) => void;
}

/**
 * A session's event log when replicas share a database: the slot's run
 * publishes here; events are appended to session_events in order (those
 * published while an append is in flight, typically text deltas, go together
 * in the next one), numbered by the database, and only then handed to this
 * replica's Reply streams with their seqs. Watchers on any replica, this one
 * included, read the database (followStored), so every reader sees the same
 * seqs. The batch holding a run's `finished` also ends its lease, in one
 * transaction.
 */
export class ClusterEventLog implements SlotEventLog {
  private readonly live = new Broadcaster<SessionEvent>();
  private readonly closed = new AbortController();
  private queue: { requestId: string; event: RunEvent }[] = [];
  private flushing: Promise<void> | undefined;
  /** Ends the current wait for more events early (a non-delta event was published). */
  private lingerEnd: (() => void) | undefined;
  private last = 0;
  private watching = 0;
  /** The lease of a run given up: its later events (its `finished`) are dropped quietly. */
  private lostLeaseId: string | undefined;
  /** A run gave up: its Reply streams continue from the database. */
  private handedOver = false;

  constructor(
    readonly sessionId: string,
    private readonly deps: ClusterEventLogDeps,
  ) {}

  /** The last seq this replica wrote for the session (the database holds the authoritative one). */
  get lastSeq(): number {
    return this.last;
  }

  get followers(): number {
    return this.live.size + this.watching;
  }

  /** The database numbers events: nothing to move. */
  skipTo(): void {}

  publish(requestId: string, event: RunEvent): void {
    this.queue.push({ requestId, event });
    // Anything but a text delta (a message, tool call, `finished`) is written without waiting further.
    if (event.kind !== "textDelta") this.lingerEnd?.();
    this.flushing ??= this.flush();
  }

  /** Settles once every event published so far is written (or given up). */
  drained(): Promise<void> {
    return this.flushing ?? Promise.resolve();
  }

  /**
   * This replica's run's events as they are written (Reply). When the run
   * had to give up (lease lost), the stream goes on from the database, where
   * the replica that took the session over records how the run ended.
   */
  subscribe(signals: AbortSignal[]): Feed<SessionEvent> {
    const live = this.live.subscribe(signals, FOLLOWER_QUEUE, `fell more than ${FOLLOWER_QUEUE} events behind session ${this.sessionId}; the run goes on: resume with WatchSession from the last seq received`);
    let seen = this.last;
    let source: BatchSource<SessionEvent> = live;
    let fromDatabase = false;
    const next = (): ReturnType<BatchSource<SessionEvent>["nextBatch"]> => {
      const batch = source.nextBatch();
      return batch instanceof Promise ? batch.then(after) : after(batch);
    };
    const after = (batch: readonly SessionEvent[] | undefined): ReturnType<BatchSource<SessionEvent>["nextBatch"]> => {
      if (batch !== undefined) {
        if (batch.length > 0) seen = batch[batch.length - 1]!.seq;
        return batch;
      }
      if (fromDatabase || !this.handedOver || this.closed.signal.aborted || signals.some((s) => s.aborted)) return undefined;
      fromDatabase = true;
      source = batchesOf(followStored(this.deps.follower, this.sessionId, seen, [...signals, this.closed.signal]));
      return next();
    };
    return feedOf({
      nextBatch: next,
      close: () => {
        live.close();
        source.close();
      },
    });
  }

  /** WatchSession: from the database; ends, as on one host, when the session is deleted on any replica. */
  follow(afterSeq: number, signals: AbortSignal[]): Feed<SessionEvent> {
    const counted = async function* (self: ClusterEventLog): AsyncGenerator<SessionEvent> {
      self.watching++;
      const gone = new AbortController();
      const unsubscribe = self.deps.onDeleted(self.sessionId, () => gone.abort());
      try {
        yield* followStored(self.deps.follower, self.sessionId, afterSeq, [...signals, self.closed.signal, gone.signal]);
      } finally {
        unsubscribe();
        self.watching--;
      }
    };
    return feedOf(batchesOf(counted(this)));
  }

  /** The window lives in the database. */
  releaseWindow(): void {}

  /**
   * Ends watchers at once. Events still being written (a run's last ones,
   * its `finished` at shutdown) are written and reach the Reply streams
   * first; then those end and the log is forgotten.
   */
  close(): void {
    this.closed.abort();
    void this.drained().then(() => {
      this.live.close();
      this.deps.onClose(this);
    });
  }

  private async flush(): Promise<void> {
    // Events published in the same turn (a provider read's deltas) join one batch; a run's
    // first text delta waits up to batchMs for the next ones: a model streaming a delta every
    // 10-50 ms would otherwise cost the database an append (and every watching replica a read)
    // per delta. Events published while an append is in flight join the next one anyway.
    await this.linger(this.queue[0]!.event.kind === "textDelta" ? this.deps.batchMs : 0);
    while (this.queue.length > 0) await this.write(this.take());
    this.flushing = undefined;
  }

  /** Resolves after `ms`, or at once when lingerEnd is called; with 0 after this turn of the event loop. */
  private linger(ms: number): Promise<void> {
    if (ms === 0) return new Promise<void>((resolve) => setImmediate(resolve));
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.lingerEnd?.(), ms);
      this.lingerEnd = () => {
        clearTimeout(timer);
        this.lingerEnd = undefined;
        resolve();
      };
    });
  }

  /** The leading events of one request, up to BATCH_MAX, ending at a `finished`. */
  private take(): { requestId: string; events: RunEvent[] } {
    const requestId = this.queue[0]!.requestId;
    let n = 0;
    const max = Math.max(1, Math.min(BATCH_MAX, Math.floor(this.deps.events.window / 4)));
    while (n < this.queue.length && n < max && this.queue[n]!.requestId === requestId) {
      if (this.queue[n++]!.event.kind === "finished") break;
    }
    return { requestId, events: this.queue.splice(0, n).map((q) => q.event) };
  }

  private async write(batch: { requestId: string; events: RunEvent[] }): Promise<void> {
    const { log } = this.deps;
    const lease = this.deps.leaseOf(this.sessionId);
    if (lease && lease.leaseId === this.lostLeaseId) return;
    if (!lease || lease.requestId !== batch.requestId) {
      log.warn({ sessionId: this.sessionId, requestId: batch.requestId, events: batch.events.length }, "events of a run that no longer holds the session were dropped");
      return;
    }
    const release = batch.events.at(-1)!.kind === "finished";
    const encoded = batch.events.map(encodeEvent);
    const started = Date.now();
    let seqs: number[] | undefined;
    for (let delay = 50; seqs === undefined; delay = Math.min(delay * 2, 1_000)) {
      try {
        seqs = await this.deps.events.append(this.sessionId, batch.requestId, encoded, lease, { release });
      } catch (err) {
        const lostLease = err instanceof LeaseLostError;
        if (lostLease || Date.now() - started > this.deps.retryForMs) {
          this.giveUp(lease, lostLease ? "its lease was taken over" : `the database refused its events: ${(err as Error).message}`);
          return;
        }
        this.deps.appendFaults.failed(this.sessionId, err, { sessionId: this.sessionId, retryInMs: delay });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.deps.appendFaults.succeeded(this.sessionId);
    for (let i = 0; i < seqs.length; i++) {
      this.last = seqs[i]!;
      this.live.publish({ seq: seqs[i]!, requestId: batch.requestId, sessionId: this.sessionId, event: batch.events[i]! });
    }
  }

  /**
   * The run may not write any more: it is stopped, its queued events dropped,
   * and this replica's Reply streams of it go on from the database, where
   * the replica that takes the session over records RUN_INTERRUPTED and
   * `finished`, as every watcher sees them.
   */
  private giveUp(lease: RunLease, reason: string): void {
    this.deps.log.warn({ sessionId: this.sessionId, requestId: lease.requestId, reason }, "the run can no longer write to the session; it stops");
    this.lostLeaseId = lease.leaseId;
    this.queue = this.queue.filter((q) => q.requestId !== lease.requestId);
    this.deps.lost(lease, reason);
    this.handedOver = true;
    this.live.close();
  }
}
