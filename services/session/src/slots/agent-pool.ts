import { CancelledError, NotFoundError, ResourceExhaustedError, type Logger } from "@skein/runtime";
import { ExtensionSet, type ExtensionConfig, type ExtensionSetOptions } from "../extensions/index.js";
import type { Coordination } from "../coordination/coordination.js";
import type { SessionStore } from "@skein/goose-sessions";
import { LiveAgent, storedAgentSpec, type AgentSpec } from "./live-agent.js";
import { ReplayBudget } from "./replay-budget.js";
import { SessionSlot } from "./session-slot.js";
import type { SlotEventLog } from "../coordination/coordination.js";

export interface AgentPoolOptions {
  /** The store and where each session's events live (this process, or the replicas' database). */
  readonly coordination: Coordination;
  /** Started for every session, before its own. */
  readonly serviceExtensions: readonly ExtensionConfig[];
  readonly extensionOptions: Omit<ExtensionSetOptions, "cwd">;
  readonly idleTimeoutMs: number;
  readonly maxLive: number;
  /** Events kept per session for replay (SKEIN_EVENT_BUFFER). */
  readonly eventBuffer: number;
  /** Events kept for replay across all sessions (SKEIN_EVENT_BUFFER_TOTAL). */
  readonly eventBufferTotal: number;
  readonly log: Logger;
}

// Last seqs of dropped slots kept for cursor checks; beyond this many the oldest are forgotten
// (a cursor of such a session then gets "reload", never a repeated seq: see RunOwnership).
const KEPT_SEQS = 100_000;

/**
 * The live sessions' slots and their agents: one SessionSlot per session,
 * created on first use and dropped when nothing live is left in it. Owns the
 * limits that span sessions: the live-agent cap (least recently used idle
 * agent goes first), the idle timeout (one sweep timer) and the replay budget.
 * An agent is started from the store when a session needs one, and started
 * again when the session's extensions were edited elsewhere.
 */
export class AgentPool {
  // Map order is recency order: use() moves a slot to the end.
  private readonly slots = new Map<string, SessionSlot>();
  private readonly keptSeq = new Map<string, number>();
  private readonly closing = new Set<Promise<void>>();
  private readonly budget: ReplayBudget;
  private readonly timer: NodeJS.Timeout;
  private evictionCount = 0;
  private closedFlag = false;

  constructor(private readonly opts: AgentPoolOptions) {
    this.budget = new ReplayBudget(opts.eventBufferTotal);
    // A quarter of the timeout keeps eviction within 25% of it; bounded so a long timeout still sweeps.
    const every = Math.min(30_000, Math.max(50, Math.floor(opts.idleTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  private get store(): SessionStore {
    return this.opts.coordination.store;
  }

  get closed(): boolean {
    return this.closedFlag;
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

  /** Events held for replay across all sessions. */
  get bufferedEvents(): number {
    return this.budget.buffered;
  }

  /** The session's slot when it has one (nothing is created). */
  find(id: string): SessionSlot | undefined {
    return this.slots.get(id);
  }

  /** Every slot, least recently used first. */
  all(): SessionSlot[] {
    return [...this.slots.values()];
  }

  lastSeq(id: string): number {
    return this.slots.get(id)?.lastSeq ?? this.keptSeq.get(id) ?? 0;
  }

  /** The session's slot (made when it has none), now the most recently used. */
  use(id: string): SessionSlot {
    let slot = this.slots.get(id);
    if (slot) this.slots.delete(id);
    else {
      if (this.closedFlag) throw new ResourceExhaustedError("the service is shutting down");
      const window = { capacity: this.opts.eventBuffer, budget: this.budget.budget };
      slot = new SessionSlot(id, this.keptSeq.get(id) ?? 0, (startSeq) => this.opts.coordination.eventLog(id, { ...window, startSeq }));
      this.keptSeq.delete(id);
    }
    this.slots.set(id, slot);
    slot.lastUsed = Date.now();
    return slot;
  }

  /** The slot's event log (made when it has none), within the replay budget. */
  eventsOf(slot: SessionSlot): SlotEventLog {
    return slot.events();
  }

  assertUsable(slot: SessionSlot): void {
    if (slot.deleted) throw new NotFoundError(`session ${slot.id} does not exist`);
    if (this.closedFlag) throw new ResourceExhaustedError("the service is shutting down");
  }

  /**
   * The slot's agent, started when it has none, and started again from the
   * store when the session's extensions were edited elsewhere (another
   * replica, the goose CLI) since it was. Called under the slot's lock.
   * Unless a reply runs, the agent's checkedAt is then the fingerprint this
   * call read (before anything its caller loads next).
   */
  async agentOf(slot: SessionSlot, given?: AgentSpec, signal?: AbortSignal): Promise<LiveAgent> {
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
      const checkedAt = await this.store.fingerprint(slot.id);
      const spec = given ?? (await this.loadSpec(slot.id));
      if (!spec) throw new NotFoundError(`session ${slot.id} does not exist`);
      const set = new ExtensionSet({ ...this.opts.extensionOptions, cwd: spec.workingDir || undefined });
      // A caller that gives up ends the processes being started at once (CANCELLED).
      await this.startExtensions(slot.id, set, [...this.opts.serviceExtensions, ...spec.extensions], given !== undefined, signal);
      if (signal?.aborted || this.closedFlag || slot.deleted) {
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

  /** Over the total replay budget: releases the windows of the least recently used sessions nobody runs or watches. */
  keepWithinBudget(): void {
    this.budget.keepWithin(this.slots.values(), (s) => this.dropIfEmpty(s));
  }

  /** Drops the slot when nothing live is left in it, keeping its last seq (unless deleted). */
  dropIfEmpty(slot: SessionSlot): void {
    if (!slot.empty || this.slots.get(slot.id) !== slot) return;
    this.slots.delete(slot.id);
    if (slot.deleted) return;
    this.keptSeq.set(slot.id, slot.lastSeq);
    if (this.keptSeq.size > KEPT_SEQS) this.keptSeq.delete(this.keptSeq.keys().next().value!);
  }

  /** A deleted session's slot: gone, and no last seq kept. */
  forget(slot: SessionSlot): void {
    if (this.slots.get(slot.id) === slot) this.slots.delete(slot.id);
    this.keptSeq.delete(slot.id);
  }

  /** No new slot from now on; the sweep stops. */
  startClosing(): void {
    this.closedFlag = true;
    clearInterval(this.timer);
  }

  /** After the work has stopped: waits for agents still starting or being evicted, then ends every log and agent. */
  async close(): Promise<void> {
    this.startClosing();
    // Agents still starting end themselves once they see `closed`.
    await Promise.all([...this.all().map((s) => s.locked(async () => undefined)), ...this.closing]);
    for (const s of this.all()) {
      s.log?.close();
      s.log = undefined;
    }
    await Promise.all(this.all().map((s) => s.agent?.extensions.close()));
    this.slots.clear();
  }

  /**
   * Whether the stored session asks for other extensions (or another working
   * dir) than `agent` runs. One fingerprint read while nothing was written
   * since the last check; the stored spec is read only when something was.
   */
  private async outdated(slot: SessionSlot, agent: LiveAgent): Promise<boolean> {
    const fingerprint = await this.store.fingerprint(slot.id);
    if (fingerprint !== undefined && fingerprint === agent.checkedAt) return false;
    const spec = await this.loadSpec(slot.id);
    if (!spec) throw new NotFoundError(`session ${slot.id} does not exist`);
    if (!agent.matches(spec)) return true;
    agent.checkedAt = fingerprint;
    return false;
  }

  private loadSpec(id: string): Promise<AgentSpec | undefined> {
    return storedAgentSpec(this.store, id, this.opts.serviceExtensions, this.opts.log);
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

  /** Idle agents past the timeout are evicted; idle windows released; empty slots dropped. */
  private sweep(): void {
    const now = Date.now();
    for (const s of this.all()) {
      if (!s.idle || now - s.lastUsed < this.opts.idleTimeoutMs) continue;
      this.evictAgent(s, "idle");
      s.releaseWindow();
      this.dropIfEmpty(s);
    }
    this.keepWithinBudget();
  }
}
