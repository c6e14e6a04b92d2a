// One domain for the in-process tests of Sessions, composed as server.ts composes it: a real
// goose sessions.db (SqliteSessionStore) in a temp dir, LocalCoordination, SessionSlots and
// Sessions; a FakeProvider object stands in for the HTTP model. No gRPC server, no child process
// (but the MCP servers a session's extensions name, which are real).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { LocalCoordination } from "../../src/coordination/coordination.js";
import type { GooseMode, JsonObject } from "@skein/goose-sessions/goose-format";
import { PermissionFile } from "../../src/permission-file.js";
import { ProviderAbortedError, type Completion, type CompletionRequest, type ModelChunk, type ModelRequest, type Provider } from "../../src/providers/provider.js";
import type { SessionEvent } from "../../src/runs/events.js";
import { Sessions } from "../../src/sessions.js";
import { SessionSlots, type SessionSlotsOptions } from "../../src/slots/session-slots.js";
import type { SessionStore } from "@skein/goose-sessions";
import { SqliteSessionStore } from "@skein/goose-sessions/sqlite";

export const log = pino({ level: "silent" });

/** What the model answers to one streamed call. */
export interface ScriptedTurn {
  readonly text?: string;
  readonly toolCalls?: readonly { id: string; name: string; args: JsonObject }[];
  readonly usage?: { input: number; output: number; total: number };
}

/**
 * The Provider interface, answered from a script: `stream` takes the next
 * enqueued turn ("ok" when none), `complete` the next answer (descriptions,
 * summaries). Every request is kept for assertions. `hold()` makes streams
 * wait until released or aborted (as a real provider, ProviderAbortedError).
 */
export class FakeProvider implements Provider {
  readonly name = "fake";
  readonly model = "fake-model";
  readonly streams: ModelRequest[] = [];
  readonly completions: CompletionRequest[] = [];
  private readonly turns: ScriptedTurn[] = [];
  private readonly answers: string[] = [];
  private held: Promise<void> | undefined;
  private streamWaiters: (() => void)[] = [];

  enqueue(...turns: ScriptedTurn[]): void {
    this.turns.push(...turns);
  }

  /** Answers for the next complete() calls. */
  answer(...texts: string[]): void {
    this.answers.push(...texts);
  }

  /** Streams wait from now on until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.held = new Promise<void>((r) => (release = r));
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** Resolves once `n` streamed calls have begun in all (a condition, not a sleep). */
  async streamed(n: number): Promise<ModelRequest> {
    while (this.streams.length < n) await new Promise<void>((r) => this.streamWaiters.push(r));
    return this.streams[n - 1]!;
  }

  async complete(req: CompletionRequest): Promise<Completion> {
    this.completions.push(req);
    return { text: this.answers.shift() ?? "a fake description", usage: { input: 3, output: 2, total: 5 } };
  }

  async *stream(req: ModelRequest): AsyncIterable<ModelChunk[]> {
    // A copy: the run goes on appending to the array it sent.
    this.streams.push({ ...req, messages: [...req.messages] });
    for (const wake of this.streamWaiters.splice(0)) wake();
    const held = this.held;
    if (held) {
      const aborted = new Promise<void>((r) => (req.signal.aborted ? r() : req.signal.addEventListener("abort", () => r(), { once: true })));
      await Promise.race([held, aborted]);
    }
    if (req.signal.aborted) throw new ProviderAbortedError("aborted");
    const turn = this.turns.shift() ?? { text: "ok" };
    const chunks: ModelChunk[] = [];
    if (turn.text) chunks.push({ type: "text", text: turn.text });
    for (const c of turn.toolCalls ?? []) chunks.push({ type: "toolCall", id: c.id, call: { status: "success", value: { name: c.name, arguments: c.args } } });
    chunks.push({ type: "usage", ...(turn.usage ?? { input: 10, output: 5, total: 15 }) });
    yield chunks;
    yield [{ type: "done", stopReason: turn.toolCalls?.length ? "tool_calls" : "stop" }];
  }
}

/** The slots as the tests run them (small windows, no idle eviction, no approval timeout); `over` wins. */
export function slotsOptions(dir: string, store: SessionStore, over: Partial<SessionSlotsOptions> = {}): SessionSlotsOptions {
  return {
    coordination: new LocalCoordination(store),
    serviceExtensions: [],
    extensionOptions: { log },
    idleTimeoutMs: 60_000,
    maxLive: 10,
    eventBuffer: 100,
    eventBufferTotal: 10_000,
    maxTurns: 3,
    limits: { maxToolResultChars: 10_000, maxModelOutputChars: 10_000 },
    compaction: { threshold: 0, contextLimit: 100_000 },
    permissions: new PermissionFile(join(dir, "permission.yaml"), log),
    approvalTimeoutMs: 0,
    log,
    ...over,
  };
}

export interface Domain {
  readonly dir: string;
  readonly store: SqliteSessionStore;
  readonly provider: FakeProvider;
  readonly slots: SessionSlots;
  readonly sessions: Sessions;
  close(): Promise<void>;
}

/** Builds the domain in a fresh temp dir; `close` ends every run, agent and file of it. */
export async function openDomain(over: Partial<SessionSlotsOptions> & { defaultMode?: GooseMode } = {}): Promise<Domain> {
  const { defaultMode = "auto", ...slotsOver } = over;
  const dir = await mkdtemp(join(tmpdir(), "skein-sessions-"));
  const store = await SqliteSessionStore.open(join(dir, "sessions"), log, { syncEachMessage: false });
  const coordination = new LocalCoordination(store);
  const provider = new FakeProvider();
  const slots = new SessionSlots(slotsOptions(dir, store, { coordination, maxTurns: 5, ...slotsOver }));
  const sessions = new Sessions({
    coordination,
    provider: { provider },
    slots,
    serviceExtensions: [],
    maxMessageChars: 100_000,
    defaultMode,
    replica: { id: "test", address: "" },
    log,
  });
  return {
    dir,
    store,
    provider,
    slots,
    sessions,
    close: async () => {
      await slots.shutdown(AbortSignal.abort());
      await coordination.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every event of a reply's stream, to its `finished` (or the pause for approvals: see until). */
export async function collect(events: AsyncIterable<SessionEvent>, until: (e: SessionEvent) => boolean = () => false): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  for await (const e of events) {
    out.push(e);
    if (until(e)) break;
  }
  return out;
}

export const finishedOf = (events: readonly SessionEvent[]) => events.map((e) => e.event).find((e) => e.kind === "finished");

/** The gRPC status code a promise rejects with (undefined when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}
