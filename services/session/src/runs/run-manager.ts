import { FailedPreconditionError, untilAborted, type Logger } from "@skein/runtime";
import type { OutputLimits } from "../agent/output-limits.js";
import type { ToolSource } from "../extensions/tool-source.js";
import type { Provider } from "../providers/provider.js";
import type { SessionStore } from "../store/session-store.js";
import { EventLog } from "./event-log.js";
import type { SessionEvent } from "./events.js";
import { executeRun, type CompactionSettings } from "./run.js";

export interface RunManagerOptions {
  readonly store: SessionStore;
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly eventBuffer: number;
  readonly compaction: CompactionSettings;
  readonly log: Logger;
}

/** What one run works with, and what to do once it has finished. */
export interface RunContext {
  readonly provider: Provider;
  readonly tools: ToolSource;
  /** Called once, after `finished` was published. */
  readonly onDone?: () => void;
}

interface Run {
  readonly requestId: string;
  readonly stop: AbortController;
  readonly done: Promise<void>;
}

/**
 * Owns the runs: at most one per session, driven to the end whatever the
 * clients do, stopped only by cancel, delete or shutdown. Clients only ever
 * subscribe to a run's events. Other exclusive work on a session (a
 * SummarizeSession) takes the same slot, so it never overlaps a reply.
 */
export class RunManager {
  private readonly runs = new Map<string, Run>();
  private readonly logs = new Map<string, EventLog>();
  // Last seq of sessions whose log was dropped (a number each), so numbering never restarts within this instance.
  private readonly droppedSeq = new Map<string, number>();
  private eventsPublished = 0;

  constructor(private readonly opts: RunManagerOptions) {}

  get running(): number {
    return this.runs.size;
  }

  /** Events published since start (skein_session_stream_events_total). */
  get published(): number {
    return this.eventsPublished;
  }

  runningRequest(sessionId: string): string | undefined {
    return this.runs.get(sessionId)?.requestId;
  }

  lastSeq(sessionId: string): number {
    return this.logs.get(sessionId)?.lastSeq ?? this.droppedSeq.get(sessionId) ?? 0;
  }

  events(sessionId: string): EventLog {
    let log = this.logs.get(sessionId);
    if (!log) {
      log = new EventLog(sessionId, this.opts.eventBuffer, this.droppedSeq.get(sessionId) ?? 0);
      this.droppedSeq.delete(sessionId);
      this.logs.set(sessionId, log);
    }
    return log;
  }

  /**
   * Starts a run and returns its events, subscribed before the run can emit.
   * The subscription ends at the run's `finished` or when a signal aborts; the
   * run itself goes on regardless.
   */
  start(sessionId: string, requestId: string, text: string, ctx: RunContext, signals: AbortSignal[]): AsyncIterable<SessionEvent> {
    this.assertIdle(sessionId);
    const events = this.events(sessionId);
    const live = events.subscribe(signals);
    const stop = new AbortController();
    const log = this.opts.log.child({ sessionId, runRequestId: requestId });
    const publish = (e: Parameters<EventLog["publish"]>[1]) => {
      this.eventsPublished++;
      return events.publish(requestId, e);
    };
    const done = (async () => {
      const reason = await executeRun({
        sessionId,
        requestId,
        text,
        store: this.opts.store,
        provider: ctx.provider,
        tools: ctx.tools,
        maxTurns: this.opts.maxTurns,
        limits: this.opts.limits,
        compaction: this.opts.compaction,
        signal: stop.signal,
        emit: publish,
        log,
      }).catch((err: unknown): "error" => {
        log.error({ err }, "run crashed");
        return "error";
      });
      // Not busy any more before anyone hears `finished`, so an immediate next Reply is accepted.
      this.runs.delete(sessionId);
      publish({ kind: "finished", reason });
      log.info({ reason }, "run finished");
      ctx.onDone?.();
    })();
    this.runs.set(sessionId, { requestId, stop, done });
    return untilFinished(live, requestId);
  }

  /**
   * Runs `work` holding the session's run slot (a Reply meanwhile is busy);
   * `label` shows as the running request. CancelReply, delete and shutdown stop it.
   */
  async exclusive<T>(sessionId: string, label: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.assertIdle(sessionId);
    const stop = new AbortController();
    const result = work(stop.signal);
    const done = result.then(
      () => undefined,
      () => undefined,
    );
    this.runs.set(sessionId, { requestId: label, stop, done });
    try {
      return await result;
    } finally {
      this.runs.delete(sessionId);
    }
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
    this.droppedSeq.delete(sessionId);
  }

  /**
   * Drops the replay buffer of a session whose agent is gone, unless a run or
   * a watcher still uses it (a watcher keeps it until it leaves; a later sweep
   * drops it then). Only its last seq is kept.
   */
  unload(sessionId: string): boolean {
    const log = this.logs.get(sessionId);
    if (!log || this.runs.has(sessionId) || log.followers > 0) return false;
    this.logs.delete(sessionId);
    this.droppedSeq.set(sessionId, log.lastSeq);
    return true;
  }

  /** Drops every buffer `unload` may drop among sessions that are not live. */
  trim(isLive: (sessionId: string) => boolean): void {
    for (const id of [...this.logs.keys()]) if (!isLive(id)) this.unload(id);
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

  /** FailedPreconditionError when a run (or exclusive work) holds the session. */
  assertIdle(sessionId: string): void {
    const busy = this.runs.get(sessionId);
    if (busy) throw new FailedPreconditionError(`session ${sessionId} is busy with request ${busy.requestId}; wait for it or cancel it with CancelReply`);
  }
}

async function* untilFinished(events: AsyncIterable<SessionEvent>, requestId: string): AsyncGenerator<SessionEvent> {
  for await (const e of events) {
    if (e.requestId !== requestId) continue;
    yield e;
    if (e.event.kind === "finished") return;
  }
}
