import { NotFoundError, ResourceExhaustedError, type Logger } from "@skein/runtime";
import { ExtensionSet, type ExtensionConfig, type ExtensionSetOptions } from "../extensions/index.js";
import { LiveAgent, type AgentLease } from "./live-agent.js";

/** What an agent is built from: the session's working dir and its own extensions. */
export interface AgentSpec {
  readonly workingDir: string;
  readonly extensions: readonly ExtensionConfig[];
}

export interface AgentRegistryOptions {
  /** Reads a session's spec from its file; undefined when the session does not exist. */
  readonly load: (sessionId: string) => Promise<AgentSpec | undefined>;
  /** Started for every session, before its own. */
  readonly serviceExtensions: readonly ExtensionConfig[];
  readonly extensionOptions: Omit<ExtensionSetOptions, "cwd">;
  readonly idleTimeoutMs: number;
  readonly maxLive: number;
  readonly log: Logger;
  /** Called after an agent was evicted (idle or cap), for in-memory state that can go with it. */
  readonly onEvicted?: (sessionId: string) => void;
  /** Called by the idle sweep, so other per-session state can be trimmed on the same timer. */
  readonly onSweep?: (isLive: (sessionId: string) => boolean) => void;
}

/**
 * The live agents: kept in memory only while used. One sweep timer evicts
 * agents idle longer than the timeout; a cap evicts the least recently used
 * idle agent when a new one is needed. Agents with a lease (a running reply)
 * are never evicted; when every live agent is busy and the cap is reached, a
 * new agent is refused with RESOURCE_EXHAUSTED rather than going over the cap.
 * Eviction ends the extension processes; the session reloads from its file.
 */
export class AgentRegistry {
  // Map order is recency order: touch() moves an agent to the end.
  private readonly agents = new Map<string, LiveAgent>();
  private readonly loading = new Map<string, Promise<LiveAgent>>();
  private readonly closing = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;
  private evictionCount = 0;
  private closed = false;

  constructor(private readonly opts: AgentRegistryOptions) {
    // A quarter of the timeout keeps eviction within 25% of it; bounded so a long timeout still sweeps.
    const every = Math.min(30_000, Math.max(50, Math.floor(opts.idleTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  get size(): number {
    return this.agents.size;
  }

  get evictions(): number {
    return this.evictionCount;
  }

  /** Extension processes running for live agents. */
  get extensionProcesses(): number {
    let n = 0;
    for (const a of this.agents.values()) n += a.extensions.processCount;
    return n;
  }

  /**
   * Leases the session's agent, loading it (and starting its extensions) when
   * it is not live. With `spec`, a new session's agent is started from it and
   * a failing extension fails the call; a reloaded agent logs extensions that
   * fail and goes on without them.
   */
  async acquire(sessionId: string, spec?: AgentSpec): Promise<AgentLease> {
    for (;;) {
      if (this.closed) throw new ResourceExhaustedError("the service is shutting down");
      const live = this.agents.get(sessionId);
      if (live) return this.lease(live);
      const pending = this.loading.get(sessionId);
      if (pending) {
        await pending.catch(() => undefined);
        continue;
      }
      const load = this.start(sessionId, spec);
      this.loading.set(sessionId, load);
      try {
        const agent = await load;
        this.agents.set(sessionId, agent);
        return this.lease(agent);
      } finally {
        this.loading.delete(sessionId);
      }
    }
  }

  /** Ends a session's agent now (DeleteSession), busy or not. */
  async drop(sessionId: string): Promise<void> {
    await this.loading.get(sessionId)?.catch(() => undefined);
    const agent = this.agents.get(sessionId);
    if (!agent) return;
    this.agents.delete(sessionId);
    await agent.extensions.close();
  }

  /** Shutdown: stops the timer and ends every agent's extension processes. */
  async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all([...this.loading.values()].map((p) => p.catch(() => undefined)));
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all([...all.map((a) => a.extensions.close()), ...this.closing]);
  }

  private lease(agent: LiveAgent): AgentLease {
    agent.leases++;
    this.touch(agent);
    let released = false;
    return {
      agent,
      release: () => {
        if (released) return;
        released = true;
        agent.leases--;
        agent.lastUsed = Date.now();
        if (this.agents.size > this.opts.maxLive) this.evictOverCap();
      },
    };
  }

  private touch(agent: LiveAgent): void {
    agent.lastUsed = Date.now();
    if (this.agents.get(agent.sessionId) === agent) {
      this.agents.delete(agent.sessionId);
      this.agents.set(agent.sessionId, agent);
    }
  }

  private async start(sessionId: string, given: AgentSpec | undefined): Promise<LiveAgent> {
    await this.makeRoom(sessionId);
    const spec = given ?? (await this.opts.load(sessionId));
    if (!spec) throw new NotFoundError(`session ${sessionId} does not exist`);
    const set = new ExtensionSet({ ...this.opts.extensionOptions, cwd: spec.workingDir || undefined });
    const all = [...this.opts.serviceExtensions, ...spec.extensions];
    if (given) {
      try {
        await set.addAll(all);
      } catch (err) {
        await set.close();
        throw err;
      }
    } else {
      await Promise.all(
        all.map((c) =>
          set.add(c).catch((err: unknown) => {
            this.opts.log.warn({ sessionId, extension: c.name, reason: (err as Error).message }, "extension failed to start; the session goes on without it");
          }),
        ),
      );
    }
    if (this.closed) {
      await set.close();
      throw new ResourceExhaustedError("the service is shutting down");
    }
    return new LiveAgent(sessionId, set, [...spec.extensions]);
  }

  /** Before a new agent: evict least recently used idle agents until one more fits. */
  private async makeRoom(sessionId: string): Promise<void> {
    const othersLoading = () => [...this.loading.keys()].filter((k) => k !== sessionId).length;
    while (this.agents.size + othersLoading() + 1 > this.opts.maxLive) {
      const victim = this.leastRecentlyUsedIdle();
      if (!victim) {
        throw new ResourceExhaustedError(
          `all ${this.agents.size} live agents are busy with replies (SKEIN_MAX_LIVE_AGENTS=${this.opts.maxLive}); retry when one finishes`,
        );
      }
      await this.evict(victim, "cap");
    }
  }

  private evictOverCap(): void {
    while (this.agents.size > this.opts.maxLive) {
      const victim = this.leastRecentlyUsedIdle();
      if (!victim) return;
      void this.evict(victim, "cap");
    }
  }

  private leastRecentlyUsedIdle(): LiveAgent | undefined {
    for (const a of this.agents.values()) if (a.idle) return a;
    return undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const a of [...this.agents.values()]) {
      if (a.idle && now - a.lastUsed >= this.opts.idleTimeoutMs) void this.evict(a, "idle");
    }
    this.opts.onSweep?.((id) => this.agents.has(id) || this.loading.has(id));
  }

  /** Removes the agent at once (a next call reloads it) and ends its processes. */
  private evict(agent: LiveAgent, why: "idle" | "cap"): Promise<void> {
    if (this.agents.get(agent.sessionId) !== agent) return Promise.resolve();
    this.agents.delete(agent.sessionId);
    this.evictionCount++;
    this.opts.log.info({ sessionId: agent.sessionId, why, idleMs: Date.now() - agent.lastUsed }, "agent evicted");
    const done = agent.extensions
      .close()
      .catch((err: unknown) => this.opts.log.warn({ err, sessionId: agent.sessionId }, "ending an evicted agent's extensions failed"))
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
    this.opts.onEvicted?.(agent.sessionId);
    return done;
  }
}
