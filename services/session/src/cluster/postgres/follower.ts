import { EVENTS_CHANNEL, type PgEventLog, type StoredEvent } from "./event-log.js";
import type { PgListener } from "./listener.js";

/**
 * Follows a session's events from any replica: reads after the cursor, then
 * again whenever a notification names the session, the LISTEN connection comes
 * back, or the fallback poll fires. Events reach the handler in seq order,
 * each exactly once; a cursor the window no longer serves rejects with
 * OUT_OF_RANGE (from PgEventLog.readAfter).
 */
export class EventFollower {
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly allWakers = new Set<() => void>();

  constructor(
    private readonly log: PgEventLog,
    listener: PgListener,
    /** Reads again this often even without a notification (a safety net; notifications are not lost on a live connection). */
    private readonly pollMs = 2_000,
  ) {
    listener.on(EVENTS_CHANNEL, (sessionId) => {
      for (const w of this.wakers.get(sessionId) ?? []) w();
    });
    listener.onReconnect(() => {
      for (const w of this.allWakers) w();
    });
  }

  /**
   * Delivers every event after `afterSeq` until `signal` aborts (the caller
   * aborts on `finished`, a client's cancel, or shutdown). Resolves with the
   * last seq delivered.
   */
  async follow(sessionId: string, afterSeq: number, onEvent: (e: StoredEvent) => void | Promise<void>, signal: AbortSignal): Promise<number> {
    let cursor = afterSeq;
    let woken = false;
    let wake: (() => void) | undefined;
    const waker = () => {
      woken = true;
      wake?.();
    };
    const set = this.wakers.get(sessionId) ?? new Set();
    this.wakers.set(sessionId, set);
    set.add(waker);
    this.allWakers.add(waker);
    signal.addEventListener("abort", waker);
    try {
      while (!signal.aborted) {
        woken = false;
        const events = await this.log.readAfter(sessionId, cursor);
        for (const e of events) {
          if (signal.aborted) return cursor;
          await onEvent(e);
          cursor = e.seq;
        }
        if (events.length > 0 || woken) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (woken || signal.aborted) wake();
        });
        wake = undefined;
      }
      return cursor;
    } finally {
      set.delete(waker);
      if (set.size === 0) this.wakers.delete(sessionId);
      this.allWakers.delete(waker);
      signal.removeEventListener("abort", waker);
    }
  }
}
