import { CancelledError, untilAborted, type Feed, type Logger } from "@skein/runtime";
import type { ToolPermissions } from "../agent-loop/tool-policy.js";
import type { OutputLimits } from "../agent-loop/output-limits.js";
import { pausedRun, type Permission } from "@skein/goose-sessions/goose-format";
import type { Provider } from "../providers/provider.js";
import type { UserPermissions } from "../runs/confirm.js";
import type { SessionEvent } from "../runs/events.js";
import type { CompactionSettings } from "../runs/run-input.js";
import type { SessionStore } from "@skein/goose-sessions";
import { AgentPool, type AgentPoolOptions } from "./agent-pool.js";
import { ApprovalFlows } from "./approval-flows.js";
import type { AgentSpec, LiveAgent } from "./live-agent.js";
import { pausedError } from "./paused-replies.js";
import { RunDriver, stopOf, untilFinished } from "./run-driver.js";
import { busy } from "../coordination/run-ownership.js";
import type { SessionSlot } from "./session-slot.js";

export interface SessionSlotsOptions extends AgentPoolOptions {
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly compaction: CompactionSettings;
  /** goose's permission.yaml: read by approve / smart_approve, written by always-* decisions. */
  readonly permissions: ToolPermissions & UserPermissions;
  /** SKEIN_APPROVAL_TIMEOUT_MS: a paused reply's undecided tool calls are denied after this long (0: never). */
  readonly approvalTimeoutMs: number;
  readonly log: Logger;
}

/**
 * The live sessions, as the domain (Sessions) uses them: every operation on a
 * session runs under its slot's lock. The parts: the AgentPool (slots, agents,
 * caps, eviction, replay budget), the RunDriver (a run as the slot's work) and
 * the ApprovalFlows (paused replies: decide, resume, time out).
 */
export class SessionSlots {
  private readonly pool: AgentPool;
  private readonly driver: RunDriver;
  private readonly approvals: ApprovalFlows;

  constructor(private readonly opts: SessionSlotsOptions) {
    this.pool = new AgentPool(opts);
    this.driver = new RunDriver(this.pool, { ...opts, paused: (id, requestId, waiting, provider) => this.approvals.arm(id, requestId, waiting, provider) });
    this.approvals = new ApprovalFlows(this.pool, this.driver, opts);
  }

  get liveAgents(): number {
    return this.pool.liveAgents;
  }

  get running(): number {
    return this.pool.running;
  }

  get extensionProcesses(): number {
    return this.pool.extensionProcesses;
  }

  /** Sessions held in memory (a live agent, running work, a watcher or a replay window); the rest keep only a last seq. */
  get held(): number {
    return this.pool.held;
  }

  get evictions(): number {
    return this.pool.evictions;
  }

  /** Events published since start (skein_session_stream_events_total). */
  get published(): number {
    return this.driver.published;
  }

  /** Tool calls of replies this process paused that wait for a decision (skein_pending_approvals). */
  get pendingApprovals(): number {
    return this.approvals.waiting;
  }

  /** Events held for replay across all sessions. */
  get bufferedEvents(): number {
    return this.pool.bufferedEvents;
  }

  runningRequest(id: string): string | undefined {
    return this.pool.find(id)?.work?.claim.label;
  }

  lastSeq(id: string): number {
    return this.pool.lastSeq(id);
  }

  /** After a start: the approval timeouts of replies paused before it (see ApprovalFlows.rearm). */
  rearmPausedReplies(provider: Provider): Promise<void> {
    return this.approvals.rearm(provider);
  }

  /** The session's metadata changed outside a run (UpdateSession): the agent's kept copy is stale. */
  invalidateHistory(id: string): void {
    this.pool.find(id)?.agent?.history.invalidate();
  }

  /** A new session's agent, from `spec`: an extension that cannot start fails the call (and `signal` stops the start). */
  async startAgent(id: string, spec: AgentSpec, signal?: AbortSignal): Promise<void> {
    const slot = this.pool.use(id);
    try {
      await slot.locked(() => this.pool.agentOf(slot, spec, signal));
    } catch (err) {
      this.pool.dropIfEmpty(slot);
      throw err;
    }
  }

  /** Runs `fn` with the session's agent (loaded when evicted), under the session's lock. */
  withAgent<T>(id: string, fn: (agent: LiveAgent) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const slot = this.pool.use(id);
    return slot
      .locked(async () => {
        const agent = await this.pool.agentOf(slot, undefined, signal);
        // `fn` may change the stored session (an extension edit): the kept history is reloaded.
        agent.history.invalidate();
        return fn(agent);
      })
      .finally(() => this.pool.dropIfEmpty(slot));
  }

  /**
   * Starts a reply and returns its events, subscribed before the run can
   * emit. The subscription ends at the run's `finished` or when a signal
   * aborts; the run goes on regardless until it ends, is cancelled, the
   * session is deleted or the service shuts down.
   */
  async reply(id: string, requestId: string, text: string, provider: Provider, signals: AbortSignal[]): Promise<Feed<SessionEvent>> {
    const slot = this.pool.use(id);
    return slot
      .locked(async () => {
        this.startable(slot);
        const agent = await this.pool.agentOf(slot);
        const claim = await this.opts.coordination.ownership.claim(id, requestId, slot.lastSeq);
        // Opened here rather than in the run (the same reads), so a paused turn is refused with a status;
        // from the fingerprint agentOf just read under this lock (agent.checkedAt), so it is read once.
        const opened = await agent.history.open(claim.store, id, agent.checkedAt).catch(() => undefined);
        const waiting = opened && pausedRun(opened.session.metadata);
        if (waiting) {
          claim.release();
          throw pausedError(id, waiting);
        }
        const events = this.driver.eventsFor(slot, claim);
        const live = events.subscribe(signals);
        this.driver.start(slot, claim, events, { requestId, text, provider, tools: agent.extensions, history: agent.history, opened });
        const reopen = this.opts.coordination.resumedElsewhere ? (after: number) => events.follow(after, signals) : undefined;
        return untilFinished(live, requestId, reopen);
      })
      .catch((err: unknown) => {
        this.pool.dropIfEmpty(slot);
        throw err;
      });
  }

  /**
   * Runs `work` holding the session (a Reply meanwhile is busy); `label` shows
   * as the running request. CancelReply, delete and shutdown stop it.
   */
  async exclusive<T>(id: string, label: string, work: (signal: AbortSignal, store: SessionStore) => Promise<T>): Promise<T> {
    const slot = this.pool.use(id);
    const started = await slot
      .locked(async () => {
        this.startable(slot);
        const claim = await this.opts.coordination.ownership.claim(id, label, slot.lastSeq);
        // The work (a summary) rewrites the stored session: the kept history is reloaded.
        slot.agent?.history.invalidate();
        const stop = stopOf(claim);
        const result = work(stop.signal, claim.store);
        const done = result.then(
          () => undefined,
          () => undefined,
        );
        slot.work = { claim, stop, done };
        return { result, claim };
      })
      .catch((err: unknown) => {
        this.pool.dropIfEmpty(slot);
        throw err;
      });
    try {
      return await started.result;
    } finally {
      this.driver.endWork(slot, started.claim);
    }
  }

  /** Stops the session's work (any, or only `requestId`) and waits until it has ended; else a paused reply is cancelled. */
  async cancel(id: string, requestId = "", provider?: Provider): Promise<boolean> {
    const work = this.pool.find(id)?.work;
    if (work && (requestId === "" || work.claim.label === requestId)) {
      work.stop.abort(new CancelledError("cancelled"));
      await work.done;
      return true;
    }
    if (!provider || work) return false;
    return this.approvals.cancelPaused(id, requestId, provider);
  }

  /** ConfirmToolCall (see ApprovalFlows.confirm). */
  confirm(id: string, toolCallId: string, permission: Permission, provider: Provider, decidedBy: { requestId: string; peer: string }): Promise<void> {
    return this.approvals.confirm(id, toolCallId, permission, provider, decidedBy);
  }

  /**
   * DeleteSession: under the session's lock (no reply can start meanwhile)
   * stops its work, removes it from the store, ends its extensions and its
   * watchers. Calls waiting for the lock then find it gone. False when the
   * store had no such session.
   */
  async delete(id: string): Promise<boolean> {
    const slot = this.pool.use(id);
    return slot.locked(async () => {
      if (slot.deleted) return false;
      slot.deleted = true;
      this.approvals.forget(id);
      try {
        if (slot.work) {
          slot.work.stop.abort(new CancelledError("session deleted"));
          await slot.work.done;
        }
        const hold = await this.opts.coordination.ownership.claimForDelete(id);
        const existed = await this.opts.coordination.store.delete(id).finally(() => hold.release());
        await slot.agent?.extensions.close();
        slot.agent = undefined;
        slot.log?.close();
        slot.log = undefined;
        this.pool.forget(slot);
        return existed;
      } catch (err) {
        slot.deleted = false;
        throw err;
      }
    });
  }

  /** WatchSession: buffered events after `afterSeq`, then live ones (OUT_OF_RANGE when the cursor cannot be served). */
  watch(id: string, afterSeq: number, signals: AbortSignal[]): Feed<SessionEvent> {
    const slot = this.pool.use(id);
    try {
      return this.pool.eventsOf(slot).follow(afterSeq, signals);
    } finally {
      this.pool.dropIfEmpty(slot);
    }
  }

  /** Lets work finish until `forced`, then stops the rest; ends every agent and watcher. */
  async shutdown(forced: AbortSignal): Promise<void> {
    this.pool.startClosing();
    this.approvals.close();
    const all = () => this.pool.all();
    await untilAborted(Promise.all(all().map((s) => s.work?.done)), forced);
    const left = all().filter((s) => s.work);
    if (left.length > 0) this.opts.log.warn({ runs: left.length }, "grace period over; stopping runs");
    for (const s of left) s.work!.stop.abort(new CancelledError("shutdown"));
    await Promise.all(left.map((s) => s.work?.done));
    await this.pool.close();
  }

  /** A new piece of work may start on the slot: it exists, the service is not closing, nothing else runs. */
  private startable(slot: SessionSlot): void {
    this.pool.assertUsable(slot);
    if (slot.work) throw busy(slot.id, slot.work.claim.label);
  }
}
