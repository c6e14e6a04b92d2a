import { stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError, SkeinError, type Feed, type Logger } from "@skein/runtime";
import { validateExtensionConfig, validateExtensionConfigs, type ExtensionConfig, type RawExtensionConfig, type ToolSpec } from "./extensions/index.js";
import { ProviderError, type Provider } from "./providers/provider.js";
import { compactAndStore } from "./runs/run.js";
import type { SessionEvent } from "./runs/events.js";
import type { SessionSlots } from "./slots/session-slots.js";
import { defaultMetadata, markDescriptionUserSet, sessionExtensions, withSessionExtensions, withSessionMode, type GooseMode, type Permission } from "@skein/goose-sessions/goose-format";
import { validateRequestId, validateSessionId, type LoadedSession, type SessionInfo, type SessionPage, type SessionStore } from "@skein/goose-sessions";
import type { ClusterStats } from "./coordination/coordination.js";
import type { Coordination } from "./coordination/coordination.js";
import type { LiveState } from "./runs/events.js";
import type { ReplicaIdentity } from "./replica-identity.js";

export interface SessionsOptions {
  /** The store, and with replicas live state, cancels and totals from their database. */
  readonly coordination: Coordination;
  /** Either the provider or why there is none (Reply answers FAILED_PRECONDITION with it). */
  readonly provider: { provider: Provider } | { missing: string };
  readonly slots: SessionSlots;
  /** Started for every session; a session's own extension may not take one of their names. */
  readonly serviceExtensions: readonly ExtensionConfig[];
  readonly maxMessageChars: number;
  /** The mode of sessions created without one (SKEIN_PERMISSION_MODE, goose's GOOSE_MODE, auto). */
  readonly defaultMode: GooseMode;
  readonly replica: ReplicaIdentity;
  readonly log: Logger;
}

export interface Stats {
  readonly liveAgents: number;
  readonly runningReplies: number;
  readonly extensionProcesses: number;
  readonly sessionsOnDisk: number;
  readonly evictions: number;
  readonly replica: { id: string; address: string };
  readonly cluster?: ClusterStats;
}

const MAX_DESCRIPTION = 1000;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;
const MAX_EXTENSIONS = 64;

/**
 * The session service's domain: validation at the edge; the store and the
 * live sessions (SessionSlots: one slot per session owning its agent, work and
 * events) behind it.
 */
export class Sessions {
  private readonly slots: SessionSlots;
  private readonly store: SessionStore;

  constructor(private readonly opts: SessionsOptions) {
    this.slots = opts.slots;
    this.store = opts.coordination.store;
  }

  /** Starts the session's extensions: one that cannot start (or a caller that gives up) fails the call and leaves no session behind. */
  async create(
    workingDir: string,
    description: string | undefined,
    rawExtensions: readonly RawExtensionConfig[],
    mode: GooseMode | undefined,
    signal?: AbortSignal,
  ): Promise<SessionInfo> {
    if (workingDir === "") throw new InvalidArgumentError("working_dir", "must not be empty");
    if (!isAbsolute(workingDir)) throw new InvalidArgumentError("working_dir", `must be an absolute path, got ${JSON.stringify(workingDir)}`);
    const isDir = await stat(workingDir).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new InvalidArgumentError("working_dir", `${JSON.stringify(workingDir)} is not an existing directory`);
    if (description !== undefined && description.length > MAX_DESCRIPTION) throw new InvalidArgumentError("description", `must be at most ${MAX_DESCRIPTION} characters`);
    if (rawExtensions.length > MAX_EXTENSIONS) throw new InvalidArgumentError("extensions", `at most ${MAX_EXTENSIONS} per session`);
    const extensions = validateExtensionConfigs(rawExtensions, "extensions");
    extensions.forEach((e, i) => this.checkNotServiceWide(e.name, `extensions[${i}].name`));

    let metadata = withSessionMode(withSessionExtensions(defaultMetadata(workingDir, description ?? ""), extensions), mode ?? this.opts.defaultMode);
    if (description !== undefined && description !== "") metadata = markDescriptionUserSet(metadata);
    // The store allocates the id (goose's rule in sessions.db), so the session exists before its
    // extensions start; one that cannot start removes the session again before the call fails.
    const info = await this.store.create(metadata);
    try {
      await this.slots.startAgent(info.id, { workingDir, extensions }, signal);
    } catch (err) {
      await this.store.delete(info.id).catch((e: unknown) => this.opts.log.error({ sessionId: info.id, err: e }, "could not remove a session whose extensions failed to start"));
      throw err;
    }
    return info;
  }

  async get(id: string, withMessages: boolean): Promise<SessionInfo | LoadedSession> {
    validateSessionId(id);
    const s = withMessages ? await this.store.load(id) : await this.store.info(id);
    if (!s) throw notFound(id);
    return s;
  }

  list(pageSize: number, pageToken: string): Promise<SessionPage> {
    if (pageSize > MAX_PAGE) throw new InvalidArgumentError("page_size", `must be at most ${MAX_PAGE}`);
    return this.store.list(pageSize === 0 ? DEFAULT_PAGE : pageSize, pageToken);
  }

  async delete(id: string): Promise<void> {
    validateSessionId(id);
    if (!(await this.slots.delete(id))) throw notFound(id);
  }

  /** Validates, then the session's slot starts the run (loading the agent if evicted). */
  async reply(id: string, text: string, requestId: string, signals: AbortSignal[]): Promise<Feed<SessionEvent>> {
    validateSessionId(id);
    if (text === "") throw new InvalidArgumentError("text", "must not be empty");
    if (text.length > this.opts.maxMessageChars) {
      throw new InvalidArgumentError("text", `must be at most ${this.opts.maxMessageChars} characters (SKEIN_MAX_MESSAGE_CHARS), got ${text.length}`);
    }
    validateRequestId(requestId);
    return this.slots.reply(id, requestId, text, this.provider(), signals);
  }

  async watch(id: string, afterSeq: number, signals: AbortSignal[]): Promise<Feed<SessionEvent>> {
    validateSessionId(id);
    if (!(await this.store.info(id))) throw notFound(id);
    return this.slots.watch(id, afterSeq, signals);
  }

  async cancel(id: string, requestId: string): Promise<boolean> {
    validateSessionId(id);
    if (requestId !== "") validateRequestId(requestId);
    const p = this.opts.provider;
    if (await this.slots.cancel(id, requestId, "provider" in p ? p.provider : undefined)) return true;
    if (!(await this.store.info(id))) throw notFound(id);
    return this.opts.coordination.cancelElsewhere(id, requestId);
  }

  /** UpdateSession: the mode (goose's goose_mode) and/or a caller's description; a running reply keeps the mode it started with. */
  async update(id: string, mode: GooseMode | undefined, description: string | undefined): Promise<SessionInfo> {
    validateSessionId(id);
    if (description !== undefined && description.length > MAX_DESCRIPTION) throw new InvalidArgumentError("description", `must be at most ${MAX_DESCRIPTION} characters`);
    const written = await this.store.updateMetadata(id, (m) => {
      let next = mode === undefined ? m : withSessionMode(m, mode);
      if (description !== undefined) next = markDescriptionUserSet({ ...next, description });
      return next;
    });
    if (!written) throw notFound(id);
    // The store's own write may keep its fingerprint: the next reply must not reuse the old mode.
    this.slots.invalidateHistory(id);
    const info = await this.store.info(id);
    if (!info) throw notFound(id);
    return info;
  }

  /** ConfirmToolCall: `decidedBy` (the deciding call's request id and peer) goes to the log line. */
  async confirm(id: string, toolCallId: string, permission: Permission | undefined, decidedBy: { requestId: string; peer: string }): Promise<void> {
    validateSessionId(id);
    if (toolCallId === "") throw new InvalidArgumentError("tool_call_id", "must not be empty");
    if (permission === undefined) throw new InvalidArgumentError("permission", "must be one of ALLOW_ONCE, ALWAYS_ALLOW, DENY_ONCE, ALWAYS_DENY");
    const provider = this.provider();
    if (!(await this.store.info(id))) throw notFound(id);
    await this.slots.confirm(id, toolCallId, permission, provider, decidedBy);
  }

  /** Starts an extension on the session's agent and persists it; returns the new tools. */
  async addExtension(id: string, raw: RawExtensionConfig | undefined, signal?: AbortSignal): Promise<ToolSpec[]> {
    validateSessionId(id);
    if (raw === undefined) throw new InvalidArgumentError("extension", "is required");
    const config = validateExtensionConfig(raw, "extension");
    this.checkNotServiceWide(config.name, "extension.name");
    return this.slots.withAgent(
      id,
      async (agent) => {
        await agent.extensions.add(config, signal);
        try {
          const next = [...agent.sessionExtensions.filter((e) => e.name !== config.name), config];
          await this.persistExtensions(id, next);
          agent.sessionExtensions = next;
        } catch (err) {
          await agent.extensions.remove(config.name).catch(() => undefined);
          throw err;
        }
        return agent.extensions.list().filter((t) => t.extension === config.name);
      },
      signal,
    );
  }

  async removeExtension(id: string, name: string): Promise<void> {
    validateSessionId(id);
    if (name === "") throw new InvalidArgumentError("name", "must not be empty");
    if (this.opts.serviceExtensions.some((e) => e.name === name)) {
      throw new FailedPreconditionError(`extension ${name} is configured service-wide (SKEIN_EXTENSIONS or goose's config.yaml); it cannot be removed from one session`);
    }
    await this.slots.withAgent(id, async (agent) => {
      if (!agent.sessionExtensions.some((e) => e.name === name) && !agent.extensions.names().includes(name)) {
        throw new NotFoundError(`extension ${name} is not in session ${id}`);
      }
      const next = agent.sessionExtensions.filter((e) => e.name !== name);
      await this.persistExtensions(id, next);
      agent.sessionExtensions = next;
      // Persisted but not running (it failed to start when the agent was loaded): nothing to end.
      if (agent.extensions.names().includes(name)) await agent.extensions.remove(name);
    });
  }

  listTools(id: string): Promise<ToolSpec[]> {
    validateSessionId(id);
    return this.slots.withAgent(id, async (agent) => agent.extensions.list());
  }

  /**
   * SummarizeSession: compacts now, holding the session (a Reply meanwhile is
   * busy). The model failing is the caller's to know (FAILED_PRECONDITION with
   * the provider's message); a cancel is CANCELLED; anything else is
   * unexpected and reaches the client as INTERNAL with the request id.
   */
  async summarize(id: string, signal?: AbortSignal): Promise<{ session: SessionInfo; summary: string }> {
    validateSessionId(id);
    const provider = this.provider();
    return this.slots.exclusive(id, "summarize", async (stop, store) => {
      const both = signal ? AbortSignal.any([stop, signal]) : stop;
      const loaded = await store.load(id);
      if (!loaded) throw notFound(id);
      const result = await compactAndStore(store, id, provider, loaded, both).catch((err: unknown) => {
        if (both.aborted) throw new CancelledError(`summarizing session ${id} was cancelled`);
        if (err instanceof SkeinError) throw err;
        if (err instanceof ProviderError) throw new FailedPreconditionError(`summarizing session ${id} failed: the model provider answered: ${err.message}`);
        throw err;
      });
      if (!result) throw new FailedPreconditionError(`session ${id} has nothing to summarize yet: it needs an earlier user turn besides the last one`);
      const { metadata, updatedAt } = result.session;
      return { session: { id, metadata, updatedAt }, summary: result.summary };
    });
  }

  async stats(): Promise<Stats> {
    return {
      liveAgents: this.slots.liveAgents,
      runningReplies: this.slots.running,
      extensionProcesses: this.slots.extensionProcesses,
      sessionsOnDisk: await this.store.count(),
      evictions: this.slots.evictions,
      replica: { id: this.opts.replica.id, address: this.opts.replica.address },
      cluster: await this.opts.coordination.stats(),
    };
  }

  /** Each session's running request and last seq: this process's, or the database's with replicas. */
  live(ids: readonly string[]): Promise<Map<string, LiveState>> {
    return this.opts.coordination.liveStates(ids, (id) => ({ runningRequestId: this.slots.runningRequest(id) ?? "", lastSeq: this.slots.lastSeq(id) }));
  }

  /** The session's own extensions as persisted (for Session.extensions). */
  extensionsOf(info: SessionInfo): ExtensionConfig[] {
    return sessionExtensions(info.metadata, this.opts.log);
  }

  private provider(): Provider {
    const p = this.opts.provider;
    if ("missing" in p) throw new FailedPreconditionError(p.missing);
    return p.provider;
  }

  private async persistExtensions(id: string, configs: readonly ExtensionConfig[]): Promise<void> {
    const written = await this.store.updateMetadata(id, (m) => withSessionExtensions(m, configs));
    if (!written) throw notFound(id);
  }

  private checkNotServiceWide(name: string, field: string): void {
    if (this.opts.serviceExtensions.some((e) => e.name === name)) throw new InvalidArgumentError(field, `${JSON.stringify(name)} is already a service-wide extension`);
  }
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`session ${id} does not exist`);
}
