/**
 * Resolves in the event loop's next check phase, after what this turn queued
 * for the network has left. Node sends HTTP/2 data (a call's streamed
 * messages) in a native immediate, which runs before any JS immediate; work
 * that would otherwise run in the same turn (a synchronous SQLite write, a
 * provider SDK building a request) waits here instead of holding those bytes
 * back.
 */
export function afterQueuedWrites(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
