import { feedOf, steppedWaits, type Feed, type Logger } from "@skein/runtime";
import type { ToolPermissions } from "../agent-loop/tool-policy.js";
import type { OutputLimits } from "../agent-loop/output-limits.js";
import type { PendingApproval } from "@skein/goose-sessions/goose-format";
import type { ExtensionSet } from "../extensions/index.js";
import type { Provider } from "../providers/provider.js";
import { PublishedEvents, type SessionEvent } from "../runs/events.js";
import { executeRun } from "../runs/run.js";
import type { CompactionSettings, RunInput } from "../runs/run-input.js";
import type { OpenedSession, SessionHistory } from "../runs/session-history.js";
import type { AgentPool } from "./agent-pool.js";
import type { RunClaim } from "../coordination/run-ownership.js";
import type { SessionSlot } from "./session-slot.js";
import type { SlotEventLog } from "../coordination/coordination.js";

export interface RunDriverOptions {
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly compaction: CompactionSettings;
  readonly permissions: ToolPermissions;
  readonly log: Logger;
  /** The run paused for tool approvals and let go of the session: `waiting` calls wait for a decision. */
  readonly paused: (sessionId: string, requestId: string, waiting: number, provider: Provider) => void;
}

/** One reply to drive: what the run gets besides what the driver adds (limits, signal, store, its event log). */
export interface ReplyRun {
  readonly requestId: string;
  readonly text: string;
  readonly provider: Provider;
  readonly tools: ExtensionSet;
  readonly history: SessionHistory;
  readonly opened?: OpenedSession;
  readonly resume?: RunInput["resume"];
}

/**
 * Drives runs on slots: a run starts as the slot's work under its claim,
 * publishes into the slot's event log (counted), and once it has ended the
 * slot is idle again before anyone hears `finished`.
 */
export class RunDriver {
  private readonly counted = new PublishedEvents();

  constructor(
    private readonly pool: AgentPool,
    private readonly opts: RunDriverOptions,
  ) {}

  /** Events published since start (skein_session_stream_events_total). */
  get published(): number {
    return this.counted.total;
  }

  /** The slot's event log, numbering on after the claim's seq (subscribe to it before `start`). */
  eventsFor(slot: SessionSlot, claim: RunClaim): SlotEventLog {
    const events = this.pool.eventsOf(slot);
    events.skipTo(claim.seqAfter);
    return events;
  }

  /** Starts `run` as the slot's work under `claim`; resolves once it has ended and `finished` was published. Never rejects. */
  start(slot: SessionSlot, claim: RunClaim, events: SlotEventLog, run: ReplyRun): Promise<void> {
    const stop = stopOf(claim);
    const done = this.drive(slot, events, run, stop.signal, claim);
    slot.work = { claim, stop, done };
    return done;
  }

  /** The work under `claim` has ended: the slot is idle again and the claim released. */
  endWork(slot: SessionSlot, claim: RunClaim | undefined): void {
    if (slot.work?.claim === claim) slot.work = undefined;
    claim?.release();
    slot.lastUsed = Date.now();
  }

  private async drive(slot: SessionSlot, log: SlotEventLog, run: ReplyRun, signal: AbortSignal, claim: RunClaim): Promise<void> {
    const logger = this.opts.log.child({ sessionId: slot.id, runRequestId: run.requestId });
    const events = this.counted.into(log);
    let waiting: readonly PendingApproval[] = [];
    // One tick later, so `slot.work` is set before anything of the run can end it.
    await Promise.resolve();
    const reason = await executeRun({
      sessionId: slot.id,
      ...run,
      signal,
      store: claim.store,
      maxTurns: this.opts.maxTurns,
      limits: this.opts.limits,
      compaction: this.opts.compaction,
      permissions: this.opts.permissions,
      paused: (pending) => (waiting = pending),
      events,
      log: logger,
    }).catch((err: unknown): "error" => {
      logger.error({ err }, "run crashed");
      return "error";
    });
    // Not busy any more before anyone hears `finished`, so an immediate next Reply is accepted.
    this.endWork(slot, slot.work?.claim);
    // Paused: no lease is held while nobody runs; whoever decides resumes it (see ApprovalFlows).
    if (reason === "paused") {
      this.opts.paused(slot.id, run.requestId, waiting.length, run.provider);
      logger.info({ waiting: waiting.length }, "run paused for tool approvals");
      for (const approval of waiting) events.publish(run.requestId, { kind: "approval", approval });
    }
    if (reason === "paused" || reason === "noop") return;
    events.publish(run.requestId, { kind: "finished", reason });
    logger.info({ reason }, "run finished");
    this.pool.keepWithinBudget();
  }
}

/** The work's stop switch; also thrown when the claim says so (lost, or cancelled on another replica). */
export function stopOf(claim: RunClaim): AbortController {
  const stop = new AbortController();
  const from = claim.signal;
  if (from?.aborted) stop.abort(from.reason);
  else from?.addEventListener("abort", () => stop.abort(from.reason), { once: true });
  return stop;
}

/**
 * The events of one request, ending with its `finished` (read a batch at a
 * time: see BatchSource). With `reopen` (replicas), a pause for approvals
 * switches to following the database: any replica may resume the run.
 */
export function untilFinished(first: Feed<SessionEvent>, requestId: string, reopen?: (afterSeq: number) => Feed<SessionEvent>): Feed<SessionEvent> {
  let events = first;
  let over = false;
  const mine = (batch: readonly SessionEvent[] | undefined): readonly SessionEvent[] | undefined => {
    if (batch === undefined || over) return undefined;
    // Mostly the batch is this request's events and none ends it: handed on as it is (no copy per wake-up).
    if (passesWhole(batch)) return batch;
    const out: SessionEvent[] = [];
    for (const e of batch) {
      if (e.requestId !== requestId) continue;
      out.push(e);
      if (e.event.kind === "finished") {
        over = true;
        events.close();
        break;
      }
      if (reopen && e.event.kind === "approval") {
        events.close();
        events = reopen(e.seq);
        reopen = undefined;
        break;
      }
    }
    return out;
  };
  const passesWhole = (batch: readonly SessionEvent[]): boolean => {
    for (const e of batch) if (e.requestId !== requestId || e.event.kind === "finished" || (reopen && e.event.kind === "approval")) return false;
    return true;
  };
  const waits = steppedWaits(mine);
  return feedOf({
    nextBatch: () => {
      if (over) return undefined;
      const next = events.nextBatch();
      return next instanceof Promise ? next.then(mine) : mine(next);
    },
    nextBatchOr: (waiter) => (over ? undefined : waits.wait(events, waiter)),
    close: () => events.close(),
  });
}
