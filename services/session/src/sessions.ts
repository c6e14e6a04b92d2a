import { stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, type Logger } from "@skein/runtime";
import { NO_TOOLS, type ToolSource } from "./agent/tools.js";
import type { Provider } from "./providers/provider.js";
import { RunManager } from "./runs/run-manager.js";
import type { SessionEvent } from "./runs/events.js";
import { defaultMetadata } from "./store/goose-format.js";
import { newSessionId, validateRequestId, validateSessionId } from "./store/ids.js";
import type { LoadedSession, SessionInfo, SessionPage, SessionStore } from "./store/session-store.js";

export interface SessionsOptions {
  readonly store: SessionStore;
  /** Either the provider or why there is none (Reply answers FAILED_PRECONDITION with it). */
  readonly provider: { provider: Provider } | { missing: string };
  readonly maxMessageChars: number;
  readonly maxTurns: number;
  readonly eventBuffer: number;
  readonly log: Logger;
  /** Tools per session; MCP extensions plug in here. */
  readonly tools?: (sessionId: string) => ToolSource;
}

const MAX_DESCRIPTION = 1000;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;

/** The session service's domain: validation at the edge, store and runs behind it. */
export class Sessions {
  readonly runs: RunManager;

  constructor(private readonly opts: SessionsOptions) {
    this.runs = new RunManager({ store: opts.store, tools: opts.tools ?? (() => NO_TOOLS), maxTurns: opts.maxTurns, eventBuffer: opts.eventBuffer, log: opts.log });
  }

  async create(workingDir: string, description: string | undefined, extensionCount: number): Promise<SessionInfo> {
    if (workingDir === "") throw new InvalidArgumentError("working_dir", "must not be empty");
    if (!isAbsolute(workingDir)) throw new InvalidArgumentError("working_dir", `must be an absolute path, got ${JSON.stringify(workingDir)}`);
    const isDir = await stat(workingDir).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new InvalidArgumentError("working_dir", `${JSON.stringify(workingDir)} is not an existing directory`);
    if (description !== undefined && description.length > MAX_DESCRIPTION) throw new InvalidArgumentError("description", `must be at most ${MAX_DESCRIPTION} characters`);
    if (extensionCount > 0) throw new InvalidArgumentError("extensions", "MCP extensions are not available in this version of the service");
    return this.opts.store.create(newSessionId(), defaultMetadata(workingDir, description ?? ""));
  }

  async get(id: string, withMessages: boolean): Promise<SessionInfo | LoadedSession> {
    validateSessionId(id);
    const s = withMessages ? await this.opts.store.load(id) : await this.opts.store.info(id);
    if (!s) throw notFound(id);
    return s;
  }

  list(pageSize: number, pageToken: string): Promise<SessionPage> {
    if (pageSize > MAX_PAGE) throw new InvalidArgumentError("page_size", `must be at most ${MAX_PAGE}`);
    return this.opts.store.list(pageSize === 0 ? DEFAULT_PAGE : pageSize, pageToken);
  }

  async delete(id: string): Promise<void> {
    validateSessionId(id);
    await this.runs.cancel(id);
    if (!(await this.opts.store.delete(id))) throw notFound(id);
    this.runs.forget(id);
  }

  /** Validates, then starts the run and returns its events (see RunManager.start). */
  async reply(id: string, text: string, requestId: string, signals: AbortSignal[]): Promise<AsyncIterable<SessionEvent>> {
    validateSessionId(id);
    if (text === "") throw new InvalidArgumentError("text", "must not be empty");
    if (text.length > this.opts.maxMessageChars) {
      throw new InvalidArgumentError("text", `must be at most ${this.opts.maxMessageChars} characters (SKEIN_MAX_MESSAGE_CHARS), got ${text.length}`);
    }
    validateRequestId(requestId);
    const p = this.opts.provider;
    if ("missing" in p) throw new FailedPreconditionError(p.missing);
    if (!(await this.opts.store.info(id))) throw notFound(id);
    return this.runs.start(id, requestId, text, p.provider, signals);
  }

  async watch(id: string, afterSeq: number, signals: AbortSignal[]): Promise<AsyncIterable<SessionEvent>> {
    validateSessionId(id);
    if (!(await this.opts.store.info(id))) throw notFound(id);
    return this.runs.events(id).follow(afterSeq, signals);
  }

  async cancel(id: string, requestId: string): Promise<boolean> {
    validateSessionId(id);
    if (requestId !== "") validateRequestId(requestId);
    if (await this.runs.cancel(id, requestId)) return true;
    if (!(await this.opts.store.info(id))) throw notFound(id);
    return false;
  }

  live(id: string): { runningRequestId: string; lastSeq: number } {
    return { runningRequestId: this.runs.runningRequest(id) ?? "", lastSeq: this.runs.lastSeq(id) };
  }
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`session ${id} does not exist`);
}
