import { randomUUID } from "node:crypto";
import { CancelledError, feedOf, NotFoundError, ResourceExhaustedError, untilAborted, type Feed, type Logger } from "@skein/runtime";
import { CANCELLED_APPROVAL, timedOutApproval, type ToolPermissions } from "../agent-loop/tool-policy.js";
import type { Permission } from "../goose-format/approval-format.js";
import { pausedRun, type PendingApproval } from "../goose-format/skein-metadata.js";
import { recordDecision, type UserPermissions } from "../runs/confirm.js";
import type { OpenedSession } from "../runs/session-history.js";
import type { OutputLimits } from "../agent-loop/output-limits.js";
import { ExtensionSet, type ExtensionConfig, type ExtensionSetOptions } from "../extensions/index.js";
import type { Provider } from "../providers/provider.js";
import { EventBudget } from "../runs/event-log.js";
import type { RunEvent, SessionEvent } from "../runs/events.js";
import { executeRun, type CompactionSettings } from "../runs/run.js";
import type { SessionHistory } from "../runs/session-history.js";
import type { SessionStore } from "../store/session-store.js";
import { LiveAgent, type AgentSpec } from "./live-agent.js";
import { busy, type RunClaim, type RunOwnership } from "./run-ownership.js";
import { claimToResume, PausedReplies, pausedError } from "./paused-replies.js";
import { SessionSlot, type SlotEventLog } from "./session-slot.js";

export interface SessionSlotsOptions {
  readonly store: SessionStore;
  readonly ownership: RunOwnership;
  /** Replicas on one database: each session's events live there (default: in this process). */
  readonly eventLogs?: (sessionId: string) => SlotEventLog;
  /** Reads a session's agent spec from the store; undefined when the session does not exist. */
  readonly loadSpec: (sessionId: string) => Promise<AgentSpec | undefined>;
  /** Started for every session, before its own. */
  readonly serviceExtensions: readonly ExtensionConfig[];
  readonly extensionOptions: Omit<ExtensionSetOptions, "cwd">;
  readonly idleTimeoutMs: number;
  readonly maxLive: number;
  /** Events kept per session for replay (SKEIN_EVENT_BUFFER). */
  readonly eventBuffer: number;
  /** Events kept for replay across all sessions (SKEIN_EVENT_BUFFER_TOTAL). */
  readonly eventBufferTotal: number;
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly compaction: CompactionSettings;
  /** goose's permission.yaml: read by approve / smart_approve, written by always-* decisions. */
  readonly permissions: ToolPermissions & UserPermissions;
  /** SKEIN_APPROVAL_TIMEOUT_MS: a paused reply's undecided tool calls are denied after this long (0: never). */
  readonly approvalTimeoutMs: number;
  readonly log: Logger;
}

/** How a paused reply goes on: see RunInput.resume. */
type Resume = { readonly deny?: string; readonly stop: boolean };

// Last seqs of dropped slots kept for cursor checks; beyond this many the oldest are forgotten
// (a cursor of such a session then gets "reload", never a repeated seq: see RunOwnership).
const KEPT_SEQS = 100_000;

/**
 * The live sessions: one SessionSlot each, created on first use and dropped
 * when nothing live is left in it. Owns the limits that span sessions: the
 * live-agent cap (least recently used idle agent goes first), the idle
 * timeout (one sweep timer) and the replay-window budget across sessions.
 */
export class SessionSlots {
  // Map order is recency order: use() moves a slot to the end.
  private readonly slots = new Map<string, SessionSlot>();
  private readonly keptSeq = new Map<string, number>();
  private readonly closing = new Set<Promise<void>>();
  private readonly budget: EventBudget;
  private readonly timer: NodeJS.Timeout;
  private evictionCount = 0;
  private readonly paused: PausedReplies;
  private eventsPublished = 0;
  private closed = false;

  constructor(private readonly opts: SessionSlotsOptions) {
    this.budget = new EventBudget(opts.eventBufferTotal);
    this.paused = new PausedReplies(opts.approvalTimeoutMs);
    // A quarter of the timeout keeps eviction within 25% of it; bounded so a long timeout still sweeps.
    const every = Math.min(30_000, Math.max(50, Math.floor(opts.idleTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  get liveAgents(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.agent) n++;
    return n;
  }

  get running(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.work) n++;
    return n;
  }

  get extensionProcesses(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.agent?.extensions.processCount ?? 0;
    return n;
  }

  /** Sessions held in memory (a live agent, running work, a watcher or a replay window); the rest keep only a last seq. */
  get held(): number {
    return this.slots.size;
  }

  get evictions(): number {
    return this.evictionCount;
  }

  /** Events published since start (skein_session_stream_events_total). */
  get published(): number {
    return this.eventsPublished;
  }

  /** Tool calls of replies this process paused that wait for a decision (skein_pending_approvals). */
  get pendingApprovals(): number {
    return this.paused.waiting;
  }

  /** Events held for replay across all sessions. */
  get bufferedEvents(): number {
    return this.budget.total;
  }

  runningRequest(id: string): string | undefined {
    return this.slots.get(id)?.work?.claim.label;
  }

  lastSeq(id: string): number {
    return this.slots.get(id)?.lastSeq ?? this.keptSeq.get(id) ?? 0;
  }

  /**
   * After a start: the replies paused before it (by this process or, with
   * replicas, any) get their SKEIN_APPROVAL_TIMEOUT_MS back, counted from when
   * they paused. Reads the session list once, in the background.
   */
  async rearmPausedReplies(provider: Provider): Promise<void> {
    if (this.opts.approvalTimeoutMs <= 0) return;
    let pageToken = "";
    do {
      const page = await this.opts.store.list(1000, pageToken);
      for (const s of page.sessions) {
        const paused = pausedRun(s.metadata);
        if (paused && !this.closed) this.armTimeout(s.id, paused.requestId, paused.pending.length, provider, paused.pausedAt);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && !this.closed);
  }

  private armTimeout(id: string, requestId: string, waiting: number, provider: Provider, pausedAt?: number): void {
    const log = this.opts.log.child({ sessionId: id, runRequestId: requestId });
    this.paused.mark(
      id,
      waiting,
      (ms) => {
        log.info({ timeoutMs: ms }, "approval timed out; denying what waits");
        this.resume(id, requestId, provider, { deny: timedOutApproval(ms) }).catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, "could not deny the approvals that timed out"),
        );
      },
      pausedAt,
    );
  }

  /** The session's metadata changed outside a run (UpdateSession): the agent's kept copy is stale. */
  invalidateHistory(id: string): void {
    this.slots.get(id)?.agent?.history.invalidate();
  }

  /** A new session's agent, from `spec`: an extension that cannot start fails the call (and `signal` stops the start). */
  async startAgent(id: string, spec: AgentSpec, signal?: AbortSignal): Promise<void> {
    const slot = this.use(id);
    try {
      await slot.locked(() => this.agentOf(slot, spec, signal));
    } catch (err) {
      this.dropIfEmpty(slot);
      throw err;
    }
  }

  /** Runs `fn` with the session's agent (loaded when evicted), under the session's lock. */
  withAgent<T>(id: string, fn: (agent: LiveAgent) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const slot = this.use(id);
    return slot
      .locked(async () => {
        const agent = await this.agentOf(slot, undefined, signal);
        // `fn` may change the stored session (an extension edit): the kept history is reloaded.
        agent.history.invalidate();
        return fn(agent);
      })
      .finally(() => this.dropIfEmpty(slot));
  }

  /**
   * Starts a reply and returns its events, subscribed before the run can
   * emit. The subscription ends at the run's `finished` or when a signal
   * aborts; the run goes on regardless until it ends, is cancelled, the
   * session is deleted or the service shuts down.
   */
  async reply(id: string, requestId: string, text: string, provider: Provider, signals: AbortSignal[]): Promise<Feed<SessionEvent>> {
    const slot = this.use(id);
    return slot.locked(async () => {
      this.assertUsable(slot);
      if (slot.work) throw busy(id, slot.work.claim.label);
      const agent = await this.agentOf(slot);
      const claim = await this.opts.ownership.claim(id, requestId, slot.lastSeq);
      const store = claim.store ?? this.opts.store;
      // Opened here rather than in the run (the same reads), so a paused turn is refused with a status.
      const opened = await agent.history.open(store, id).catch(() => undefined);
      const waiting = opened && pausedRun(opened.session.metadata);
      if (waiting) {
        claim.release();
        throw pausedError(id, waiting);
      }
      const events = slot.events(this.opts.eventBuffer, this.budget);
      events.skipTo(claim.seqAfter);
      const live = events.subscribe(signals);
      const stop = stopOf(claim);
      const done = this.drive(slot, events, { requestId, text, provider, tools: agent.extensions, history: agent.history, signal: stop.signal, store, opened });
      slot.work = { claim, stop, done };
      return untilFinished(live, requestId, this.opts.eventLogs && ((after) => events.follow(after, signals)));
    }).catch((err: unknown) => {
      this.dropIfEmpty(slot);
      throw err;
    });
  }

  /**
   * Runs `work` holding the session (a Reply meanwhile is busy); `label` shows
   * as the running request. CancelReply, delete and shutdown stop it.
   */
  async exclusive<T>(id: string, label: string, work: (signal: AbortSignal, store: SessionStore) => Promise<T>): Promise<T> {
    const slot = this.use(id);
    const started = await slot
      .locked(async () => {
        this.assertUsable(slot);
        if (slot.work) throw busy(id, slot.work.claim.label);
        const claim = await this.opts.ownership.claim(id, label, slot.lastSeq);
        // The work (a summary) rewrites the stored session: the kept history is reloaded.
        slot.agent?.history.invalidate();
        const stop = stopOf(claim);
        const result = work(stop.signal, claim.store ?? this.opts.store);
        const done = result.then(
          () => undefined,
          () => undefined,
        );
        slot.work = { claim, stop, done };
        return { result, claim, done };
      })
      .catch((err: unknown) => {
        this.dropIfEmpty(slot);
        throw err;
      });
    try {
      return await started.result;
    } finally {
      this.endWork(slot, started.claim);
    }
  }

  /** Stops the session's work (any, or only `requestId`) and waits until it has ended. */
  async cancel(id: string, requestId = "", provider?: Provider): Promise<boolean> {
    const work = this.slots.get(id)?.work;
    if (work && (requestId === "" || work.claim.label === requestId)) {
      work.stop.abort(new CancelledError("cancelled"));
      await work.done;
      return true;
    }
    // A reply paused for approvals (here, elsewhere, before a restart): what waits is denied and it ends cancelled.
    const info = provider && !work ? await this.opts.store.info(id) : undefined;
    const waiting = info && pausedRun(info.metadata);
    if (!provider || !waiting || (requestId !== "" && waiting.requestId !== requestId)) return false;
    const done = await this.resume(id, waiting.requestId, provider, { deny: CANCELLED_APPROVAL, stop: true });
    await done;
    return true;
  }

  /**
   * ConfirmToolCall: the decision is checked against the stored history and
   * stored; once nothing of the turn waits, the paused reply goes on here,
   * whichever process paused it. Resolves once it has started.
   */
  async confirm(id: string, toolCallId: string, permission: Permission, provider: Provider, decidedBy: { requestId: string; peer: string }): Promise<void> {
    const slot = this.use(id);
    const d = await slot
      .locked(async () => {
        this.assertUsable(slot);
        const recorded = await recordDecision(this.opts.store, this.opts.permissions, id, toolCallId, permission);
        // The decision was written outside a run: the agent's kept copy of the history is stale.
        slot.agent?.history.invalidate();
        return recorded;
      })
      .finally(() => this.dropIfEmpty(slot));
    if (d.recorded) {
      this.opts.log.info({ sessionId: id, toolName: d.toolName, toolCallId, permission, decidedBy: decidedBy.requestId, peer: decidedBy.peer }, "tool call decided");
      this.paused.decided(id);
    }
    if (d.resumeAs !== undefined) await this.resume(id, d.resumeAs || randomUUID(), provider, {});
  }

  /** Continues a paused reply under its request id; resolves with its end once it has started. */
  private async resume(id: string, requestId: string, provider: Provider, resume: Partial<Resume>): Promise<Promise<void>> {
    const slot = this.use(id);
    return slot
      .locked(async () => {
        this.assertUsable(slot);
        // The paused run itself may still be writing its last metadata.
        if (slot.work) await slot.work.done;
        const agent = await this.agentOf(slot);
        const claim = await claimToResume(this.opts.ownership, id, requestId, slot.lastSeq);
        this.paused.clear(id);
        agent.history.invalidate();
        const events = slot.events(this.opts.eventBuffer, this.budget);
        events.skipTo(claim.seqAfter);
        const stop = stopOf(claim);
        const run = { requestId, text: "", provider, tools: agent.extensions, history: agent.history, signal: stop.signal, store: claim.store ?? this.opts.store };
        const done = this.drive(slot, events, { ...run, resume: { stop: false, ...resume } });
        slot.work = { claim, stop, done };
        return done;
      })
      .catch((err: unknown) => {
        this.dropIfEmpty(slot);
        throw err;
      });
  }

  /**
   * DeleteSession: under the session's lock (no reply can start meanwhile)
   * stops its work, removes it from the store, ends its extensions and its
   * watchers. Calls waiting for the lock then find it gone. False when the
   * store had no such session.
   */
  async delete(id: string): Promise<boolean> {
    const slot = this.use(id);
    return slot.locked(async () => {
      if (slot.deleted) return false;
      slot.deleted = true;
      this.paused.clear(id);
      try {
        if (slot.work) {
          slot.work.stop.abort(new CancelledError("session deleted"));
          await slot.work.done;
        }
        const hold = await this.opts.ownership.claimForDelete(id);
        const existed = await this.opts.store.delete(id).finally(() => hold.release());
        await slot.agent?.extensions.close();
        slot.agent = undefined;
        slot.log?.close();
        slot.log = undefined;
        if (this.slots.get(id) === slot) this.slots.delete(id);
        this.keptSeq.delete(id);
        return existed;
      } catch (err) {
        slot.deleted = false;
        throw err;
      }
    });
  }

  /** WatchSession: buffered events after `afterSeq`, then live ones (OUT_OF_RANGE when the cursor cannot be served). */
  watch(id: string, afterSeq: number, signals: AbortSignal[]): Feed<SessionEvent> {
    const slot = this.use(id);
    try {
      return slot.events(this.opts.eventBuffer, this.budget).follow(afterSeq, signals);
    } finally {
      this.dropIfEmpty(slot);
    }
  }

  /** Lets work finish until `forced`, then stops the rest; ends every agent and watcher. */
  async shutdown(forced: AbortSignal): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.paused.clearAll();
    const all = () => [...this.slots.values()];
    await untilAborted(Promise.all(all().map((s) => s.work?.done)), forced);
    const left = all().filter((s) => s.work);
    if (left.length > 0) this.opts.log.warn({ runs: left.length }, "grace period over; stopping runs");
    for (const s of left) s.work!.stop.abort(new CancelledError("shutdown"));
    await Promise.all(left.map((s) => s.work?.done));
    // Agents still starting end themselves once they see `closed`.
    await Promise.all([...all().map((s) => s.locked(async () => undefined)), ...this.closing]);
    for (const s of all()) {
      s.log?.close();
      s.log = undefined;
    }
    await Promise.all(all().map((s) => s.agent?.extensions.close()));
    this.slots.clear();
  }

  private use(id: string): SessionSlot {
    let slot = this.slots.get(id);
    if (slot) this.slots.delete(id);
    else {
      if (this.closed) throw new ResourceExhaustedError("the service is shutting down");
      slot = new SessionSlot(id, this.keptSeq.get(id) ?? 0, this.opts.eventLogs);
      this.keptSeq.delete(id);
    }
    this.slots.set(id, slot);
    slot.lastUsed = Date.now();
    return slot;
  }

  private assertUsable(slot: SessionSlot): void {
    if (slot.deleted) throw new NotFoundError(`session ${slot.id} does not exist`);
    if (this.closed) throw new ResourceExhaustedError("the service is shutting down");
  }

  /**
   * The slot's agent, started when it has none, and started again from the
   * store when the session's extensions were edited elsewhere (another
   * replica, the goose CLI) since it was. Called under the slot's lock.
   */
  private async agentOf(slot: SessionSlot, given?: AgentSpec, signal?: AbortSignal): Promise<LiveAgent> {
    this.assertUsable(slot);
    // A running reply uses the agent as it is; the check comes with the next use.
    if (slot.agent && !slot.work && (await this.outdated(slot, slot.agent))) {
      this.opts.log.info({ sessionId: slot.id }, "the session's extensions changed in the store; restarting its agent");
      const agent = slot.agent;
      slot.agent = undefined;
      await agent.extensions.close();
    }
    if (slot.agent) return slot.agent;
    this.makeRoom(slot);
    slot.loadingAgent = true;
    try {
      if (signal?.aborted) throw new CancelledError(`session ${slot.id}: the call was cancelled`);
      // Read before the spec: a write in between only costs one more check.
      const checkedAt = await this.opts.store.fingerprint(slot.id);
      const spec = given ?? (await this.opts.loadSpec(slot.id));
      if (!spec) throw new NotFoundError(`session ${slot.id} does not exist`);
      const set = new ExtensionSet({ ...this.opts.extensionOptions, cwd: spec.workingDir || undefined });
      // A caller that gives up ends the processes being started at once (CANCELLED).
      await this.startExtensions(slot.id, set, [...this.opts.serviceExtensions, ...spec.extensions], given !== undefined, signal);
      if (signal?.aborted || this.closed || slot.deleted) {
        await set.close();
        if (signal?.aborted) throw new CancelledError(`starting session ${slot.id}'s extensions was cancelled`);
        this.assertUsable(slot);
      }
      slot.agent = new LiveAgent(set, [...spec.extensions], spec.workingDir, checkedAt);
      return slot.agent;
    } finally {
      slot.loadingAgent = false;
    }
  }

  /**
   * Whether the stored session asks for other extensions (or another working
   * dir) than `agent` runs. One fingerprint read while nothing was written
   * since the last check; the stored spec is read only when something was.
   */
  private async outdated(slot: SessionSlot, agent: LiveAgent): Promise<boolean> {
    const fingerprint = await this.opts.store.fingerprint(slot.id);
    if (fingerprint !== undefined && fingerprint === agent.checkedAt) return false;
    const spec = await this.opts.loadSpec(slot.id);
    if (!spec) throw new NotFoundError(`session ${slot.id} does not exist`);
    if (!agent.matches(spec)) return true;
    agent.checkedAt = fingerprint;
    return false;
  }

  /** A new session's extensions must all start; a reloaded one goes on without those that fail. */
  private async startExtensions(id: string, set: ExtensionSet, configs: ExtensionConfig[], strict: boolean, signal: AbortSignal | undefined): Promise<void> {
    if (strict) {
      try {
        await set.addAll(configs, signal);
      } catch (err) {
        await set.close();
        throw err;
      }
      return;
    }
    await Promise.all(
      configs.map((c) =>
        set.add(c, signal).catch((err: unknown) => {
          this.opts.log.warn({ sessionId: id, extension: c.name, reason: (err as Error).message }, "extension failed to start; the session goes on without it");
        }),
      ),
    );
  }

  /** Before a new agent: evict least recently used idle agents until one more fits. */
  private makeRoom(slot: SessionSlot): void {
    let live = 0;
    for (const s of this.slots.values()) if (s !== slot && (s.agent || s.loadingAgent)) live++;
    while (live + 1 > this.opts.maxLive) {
      const victim = [...this.slots.values()].find((s) => s !== slot && s.agent && s.idle);
      if (!victim) {
        throw new ResourceExhaustedError(`all ${live} live agents are busy with replies (SKEIN_MAX_LIVE_AGENTS=${this.opts.maxLive}); retry when one finishes`);
      }
      this.evictAgent(victim, "cap");
      // Its window may be gone already: then nothing of it is left to hold but its last seq.
      this.dropIfEmpty(victim);
      live--;
    }
  }

  /** Ends an idle slot's agent (a later call reloads it from the store). */
  private evictAgent(slot: SessionSlot, why: "idle" | "cap"): void {
    const agent = slot.agent;
    if (!agent) return;
    slot.agent = undefined;
    this.evictionCount++;
    this.opts.log.info({ sessionId: slot.id, why, idleMs: Date.now() - slot.lastUsed }, "agent evicted");
    const done = agent.extensions
      .close()
      .catch((err: unknown) => this.opts.log.warn({ err, sessionId: slot.id }, "ending an evicted agent's extensions failed"))
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
  }

  /** Runs one reply to its end and publishes `finished`; never rejects. */
  private async drive(
    slot: SessionSlot,
    events: SlotEventLog,
    run: {
      requestId: string;
      text: string;
      provider: Provider;
      tools: ExtensionSet;
      history: SessionHistory;
      signal: AbortSignal;
      store: SessionStore;
      opened?: OpenedSession;
      resume?: Resume;
    },
  ): Promise<void> {
    const log = this.opts.log.child({ sessionId: slot.id, runRequestId: run.requestId });
    const publish = (e: RunEvent) => {
      this.eventsPublished++;
      events.publish(run.requestId, e);
    };
    let waiting: readonly PendingApproval[] = [];
    // One tick later, so `slot.work` is set before anything of the run can end it.
    await Promise.resolve();
    const reason = await executeRun({
      sessionId: slot.id,
      ...run,
      maxTurns: this.opts.maxTurns,
      limits: this.opts.limits,
      compaction: this.opts.compaction,
      permissions: this.opts.permissions,
      paused: (pending) => (waiting = pending),
      emit: publish,
      log,
    }).catch((err: unknown): "error" => {
      log.error({ err }, "run crashed");
      return "error";
    });
    // Not busy any more before anyone hears `finished`, so an immediate next Reply is accepted.
    this.endWork(slot, slot.work?.claim);
    // Paused: no lease is held while nobody runs; whoever decides resumes it (see confirm).
    if (reason === "paused") {
      this.armTimeout(slot.id, run.requestId, waiting.length, run.provider);
      log.info({ waiting: waiting.length }, "run paused for tool approvals");
      for (const approval of waiting) publish({ kind: "approval", approval });
    }
    if (reason === "paused" || reason === "noop") return;
    publish({ kind: "finished", reason });
    log.info({ reason }, "run finished");
    this.keepWithinBudget();
  }

  private endWork(slot: SessionSlot, claim: SlotWorkClaim | undefined): void {
    if (slot.work?.claim === claim) slot.work = undefined;
    claim?.release();
    slot.lastUsed = Date.now();
  }

  /** Over the total budget: release the windows of the least recently used sessions nobody runs or watches. */
  private keepWithinBudget(): void {
    if (!this.budget.over) return;
    for (const s of [...this.slots.values()]) {
      if (!this.budget.over) break;
      if (s.releaseWindow()) this.dropIfEmpty(s);
    }
  }

  private dropIfEmpty(slot: SessionSlot): void {
    if (!slot.empty || this.slots.get(slot.id) !== slot) return;
    this.slots.delete(slot.id);
    if (slot.deleted) return;
    this.keptSeq.set(slot.id, slot.lastSeq);
    if (this.keptSeq.size > KEPT_SEQS) this.keptSeq.delete(this.keptSeq.keys().next().value!);
  }

  /** Idle agents past the timeout are evicted; idle windows released; empty slots dropped. */
  private sweep(): void {
    const now = Date.now();
    for (const s of [...this.slots.values()]) {
      if (!s.idle || now - s.lastUsed < this.opts.idleTimeoutMs) continue;
      this.evictAgent(s, "idle");
      s.releaseWindow();
      this.dropIfEmpty(s);
    }
    this.keepWithinBudget();
  }
}

type SlotWorkClaim = NonNullable<SessionSlot["work"]>["claim"];

/** The work's stop switch; also thrown when the claim says so (lost, or cancelled on another replica). */
function stopOf(claim: RunClaim): AbortController {
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
function untilFinished(first: Feed<SessionEvent>, requestId: string, reopen?: (afterSeq: number) => Feed<SessionEvent>): Feed<SessionEvent> {
  let events = first;
  let over = false;
  const mine = (batch: readonly SessionEvent[] | undefined): SessionEvent[] | undefined => {
    if (batch === undefined || over) return undefined;
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
  return feedOf({
    nextBatch: () => {
      if (over) return undefined;
      const next = events.nextBatch();
      return next instanceof Promise ? next.then(mine) : mine(next);
    },
    close: () => events.close(),
  });
}
