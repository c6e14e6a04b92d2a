import { FailedPreconditionError, untilAborted, type Logger } from "@skein/runtime";
import type { ToolSource } from "../agent/tools.js";
import type { Provider } from "../providers/provider.js";
import type { SessionStore } from "../store/session-store.js";
import { EventLog } from "./event-log.js";
import type { SessionEvent } from "./events.js";
import { executeRun } from "./run.js";

export interface RunManagerOptions {
  readonly store: SessionStore;
  readonly tools: (sessionId: string) => ToolSource;
  readonly maxTurns: number;
  readonly eventBuffer: number;
  readonly log: Logger;
}

interface Run {
  readonly requestId: string;
  readonly stop: AbortController;
  readonly done: Promise<void>;
}

/**
 * Owns the runs: at most one per session, driven to the end whatever the
 * clients do, stopped only by cancel, delete or shutdown. Clients only ever
 * subscribe to a run's events.
 */
export class RunManager {
  private readonly runs = new Map<string, Run>();
  private readonly logs = new Map<string, EventLog>();

  constructor(private readonly opts: RunManagerOptions) {}

  get running(): number {
    return this.runs.size;
  }

  runningRequest(sessionId: string): string | undefined {
    return this.runs.get(sessionId)?.requestId;
  }

  lastSeq(sessionId: string): number {
    return this.logs.get(sessionId)?.lastSeq ?? 0;
  }

  events(sessionId: string): EventLog {
    let log = this.logs.get(sessionId);
    if (!log) {
      log = new EventLog(sessionId, this.opts.eventBuffer);
      this.logs.set(sessionId, log);
    }
    return log;
  }

  /**
   * Starts a run and returns its events, subscribed before the run can emit.
   * The subscription ends at the run's `finished` or when a signal aborts; the
   * run itself goes on regardless.
   */
  start(sessionId: string, requestId: string, text: string, provider: Provider, signals: AbortSignal[]): AsyncIterable<SessionEvent> {
    const busy = this.runs.get(sessionId);
    if (busy) throw new FailedPreconditionError(`session ${sessionId} is busy with request ${busy.requestId}; wait for it or cancel it with CancelReply`);
    const events = this.events(sessionId);
    const live = events.subscribe(signals);
    const stop = new AbortController();
    const log = this.opts.log.child({ sessionId, runRequestId: requestId });
    const done = (async () => {
      const reason = await executeRun({
        sessionId,
        requestId,
        text,
        store: this.opts.store,
        provider,
        tools: this.opts.tools(sessionId),
        maxTurns: this.opts.maxTurns,
        signal: stop.signal,
        emit: (e) => events.publish(requestId, e),
        log,
      }).catch((err: unknown): "error" => {
        log.error({ err }, "run crashed");
        return "error";
      });
      // Not busy any more before anyone hears `finished`, so an immediate next Reply is accepted.
      this.runs.delete(sessionId);
      events.publish(requestId, { kind: "finished", reason });
      log.info({ reason }, "run finished");
    })();
    this.runs.set(sessionId, { requestId, stop, done });
    return untilFinished(live, requestId);
  }

  /** Stops the session's run (any, or only `requestId`) and waits until it has finished. */
  async cancel(sessionId: string, requestId = ""): Promise<boolean> {
    const run = this.runs.get(sessionId);
    if (!run || (requestId !== "" && run.requestId !== requestId)) return false;
    run.stop.abort(new Error("cancelled"));
    await run.done;
    return true;
  }

  /** After a delete: ends the session's followers and drops its buffer. */
  forget(sessionId: string): void {
    this.logs.get(sessionId)?.close();
    this.logs.delete(sessionId);
  }

  /** Lets runs finish until `forced`, then stops the rest; resolves once all have persisted and finished. */
  async shutdown(forced: AbortSignal): Promise<void> {
    await untilAborted(Promise.all([...this.runs.values()].map((r) => r.done)), forced);
    const left = [...this.runs.values()];
    if (left.length > 0) this.opts.log.warn({ runs: left.length }, "grace period over; stopping runs");
    for (const r of left) r.stop.abort(new Error("shutdown"));
    await Promise.all(left.map((r) => r.done));
    for (const log of this.logs.values()) log.close();
  }
}

async function* untilFinished(events: AsyncIterable<SessionEvent>, requestId: string): AsyncGenerator<SessionEvent> {
  for await (const e of events) {
    if (e.requestId !== requestId) continue;
    yield e;
    if (e.event.kind === "finished") return;
  }
}
