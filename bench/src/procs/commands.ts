/**
 * The child side of a bench process: answers the parent's commands over the
 * IPC channel ({ id, cmd, args } → { id, result } or { id, error }) and exits
 * when the parent goes away, so a crashed bench leaves nothing running.
 */
export type Handlers = Record<string, (args: never) => unknown>;

export function serveCommands(handlers: Handlers): void {
  process.on("message", (m: { id: number; cmd: string; args: unknown }) => {
    const handler = handlers[m.cmd];
    void (async () => {
      try {
        if (!handler) throw new Error(`unknown command ${m.cmd}`);
        process.send!({ id: m.id, result: await handler(m.args as never) });
      } catch (err) {
        process.send!({ id: m.id, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      }
    })();
  });
  process.on("disconnect", () => process.exit(0));
  process.send!({ ready: true });
}

/** Milliseconds on CLOCK_MONOTONIC, the same clock in every process of the machine. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * The offset from performance.now() to monoMs(), from the tightest of many
 * bracketed readings: a single pair of readings is off by a whole scheduler
 * slice when the process is preempted between them (common on a loaded machine).
 */
function perfOffset(): number {
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 200; i++) {
    const before = monoMs();
    const perf = performance.now();
    const after = monoMs();
    if (after - before < best) {
      best = after - before;
      offset = (before + after) / 2 - perf;
    }
  }
  return offset;
}

/** performance.now() of this process → monoMs(). */
export const perfToMono = ((offset) => (t: number) => t + offset)(perfOffset());
