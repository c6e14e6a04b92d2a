/**
 * Waits for a promise unless one of the signals aborts first (then resolves
 * `undefined`). Listeners are removed either way, so a long-lived signal never
 * accumulates them.
 */
export function untilAborted<T>(p: Promise<T>, ...signals: AbortSignal[]): Promise<T | undefined> {
  if (signals.some((s) => s.aborted)) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => {
      cleanup();
      resolve(undefined);
    };
    const cleanup = () => signals.forEach((s) => s.removeEventListener("abort", onAbort));
    signals.forEach((s) => s.addEventListener("abort", onAbort, { once: true }));
    p.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(e);
      },
    );
  });
}

/** Resolves after ms, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
