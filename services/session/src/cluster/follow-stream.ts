import type { SessionEvent } from "../runs/events.js";
import type { EventFollower } from "./postgres/follower.js";
import { decodeEvent } from "./event-codec.js";

/** Events read ahead of a slow watcher before the follower waits for it (backpressure). */
const READ_AHEAD = 256;

/**
 * A session's stored events after `afterSeq` as an async iterable, for
 * WatchSession on any replica: EventFollower reads the database (catch-up,
 * then on every notification); this turns its callbacks into a stream that
 * waits for its reader. Ends when a signal aborts; a cursor the window no
 * longer serves rejects at the first step with OUT_OF_RANGE.
 */
export async function* followStored(follower: EventFollower, sessionId: string, afterSeq: number, signals: AbortSignal[]): AsyncGenerator<SessionEvent> {
  const mine = new AbortController();
  const signal = AbortSignal.any([...signals, mine.signal]);
  const queue: SessionEvent[] = [];
  let failure: { err: unknown } | undefined;
  let ended = false;
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const nudge = (w: (() => void) | undefined) => w?.();
  const onAbort = () => (nudge(wakeReader), nudge(wakeWriter));
  signal.addEventListener("abort", onAbort);
  const following = follower
    .follow(
      sessionId,
      afterSeq,
      async (e) => {
        queue.push({ seq: e.seq, requestId: e.requestId, sessionId, event: decodeEvent(e.event) });
        nudge(wakeReader);
        while (queue.length >= READ_AHEAD && !signal.aborted) await new Promise<void>((r) => (wakeWriter = r));
        wakeWriter = undefined;
      },
      signal,
    )
    .then(
      () => undefined,
      (err: unknown) => {
        failure = { err };
      },
    )
    .finally(() => {
      ended = true;
      nudge(wakeReader);
    });
  try {
    for (;;) {
      const e = queue.shift();
      if (e) {
        nudge(wakeWriter);
        yield e;
        continue;
      }
      if (failure) throw failure.err;
      if (ended || signal.aborted) return;
      await new Promise<void>((r) => (wakeReader = r));
      wakeReader = undefined;
    }
  } finally {
    mine.abort();
    signal.removeEventListener("abort", onAbort);
    await following;
  }
}
