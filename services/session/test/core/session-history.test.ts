// The live agent's copy of the session history: reused between replies only while no one else
// wrote to the session (goose on the same sessions.db or JSONL file), and a reply's start: the model
// call goes out while the user's message is stored (one event-loop turn later: a synchronous store's
// write and the message's event go first), its deltas wait for that message's event, and a failed
// store aborts the call or keeps it from being sent. Real stores in a temp dir, goose's writes from a second connection.
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { gate } from "@skein/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata, textOf } from "@skein/goose-sessions/goose-format";
import { ProviderAbortedError, type ModelChunk, type ModelRequest, type Provider } from "../../src/providers/provider.js";
import type { RunEvent, SessionEvent } from "../../src/runs/events.js";
import { slotsOptions } from "./sessions-fixture.js";
import { SessionSlots } from "../../src/slots/session-slots.js";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";
import type { SessionStore } from "@skein/goose-sessions";
import { SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { openLikeGoose } from "../support/goose-db.js";

const log = pino({ level: "silent" });

/** Answers "ok"; records the texts of every request's messages as sent. */
class RecordingProvider implements Provider {
  readonly name = "recording";
  readonly model = "m";
  readonly requests: string[][] = [];
  /** Resolves once a request was made. */
  requested = gate();
  /** When set, the first chunk waits for it (or the request's abort). */
  hold: Promise<void> | undefined;
  aborted = false;
  /** Called as each request is made. */
  onRequest: (() => void) | undefined;

  async complete(): Promise<never> {
    throw new Error("no completions here");
  }

  async *stream(req: ModelRequest): AsyncIterable<ModelChunk[]> {
    this.requests.push(req.messages.map((m) => textOf(m.content)));
    this.onRequest?.();
    this.requested.release();
    if (this.hold) {
      const abort = new Promise<void>((r) => req.signal.addEventListener("abort", () => r(), { once: true }));
      await Promise.race([this.hold, abort]);
      if (req.signal.aborted) {
        this.aborted = true;
        throw new ProviderAbortedError("aborted");
      }
    }
    yield [{ type: "text", text: "ok" }];
    yield [{ type: "done", stopReason: "stop" }];
  }
}

async function collect(events: AsyncIterable<SessionEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of events) out.push(e.event);
  return out;
}

/** The store, with load() counted and append() replaceable. */
function instrumented(store: SessionStore): { store: SessionStore; loads: () => number; append: { override?: SessionStore["append"] } } {
  let loads = 0;
  const append: { override?: SessionStore["append"] } = {};
  const proxy = new Proxy(store, {
    get(target, key) {
      if (key === "load") return (id: string) => (loads++, target.load(id));
      if (key === "append") return (id: string, m: Parameters<SessionStore["append"]>[1]) => (append.override ?? target.append.bind(target))(id, m);
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: proxy, loads: () => loads, append };
}

let dir: string;
let slots: SessionSlots | undefined;
let closeStore: (() => Promise<void>) | undefined;
let goose: Database.Database | undefined;

function openSlots(store: SessionStore): SessionSlots {
  slots = new SessionSlots(slotsOptions(dir, store));
  return slots;
}

async function sqliteStore(): Promise<SqliteSessionStore> {
  const s = await SqliteSessionStore.open(join(dir, "sessions"), log, { syncEachMessage: false });
  closeStore = () => s.close();
  return s;
}

async function jsonlStore(): Promise<JsonlSessionStore> {
  const s = await JsonlSessionStore.open(join(dir, "sessions"), log, { syncEachMessage: false });
  closeStore = () => s.close();
  return s;
}

async function newSession(store: SessionStore): Promise<string> {
  return (await store.create({ ...defaultMetadata(dir, "d"), skein: { description_user_set: true } })).id;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-history-"));
});

afterEach(async () => {
  await slots?.shutdown(AbortSignal.abort());
  slots = undefined;
  goose?.close();
  goose = undefined;
  await closeStore?.();
  closeStore = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** goose's add_message: one row with goose's id and visibility, updated_at bumped, in one transaction. */
function gooseAddsMessage(db: Database.Database, sessionId: string, text: string): void {
  db.transaction(() => {
    db.prepare("UPDATE sessions SET updated_at = datetime('now') WHERE id = ?").run(sessionId);
    db.prepare("INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) VALUES (?, ?, 'user', ?, ?, ?)").run(
      `msg_${sessionId}_goose${Math.random().toString(16).slice(2)}`,
      sessionId,
      JSON.stringify([{ type: "text", text }]),
      Math.floor(Date.now() / 1000),
      JSON.stringify({ userVisible: true, agentVisible: true }),
    );
  }).immediate();
}

/** goose's replace_conversation (compaction): every row of the session deleted and the new conversation inserted. */
function gooseReplacesConversation(db: Database.Database, sessionId: string, texts: string[]): void {
  db.transaction(() => {
    db.prepare("DELETE FROM messages WHERE session_id = ?").run(sessionId);
    texts.forEach((text, i) =>
      db.prepare("INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) VALUES (?, ?, ?, ?, ?, ?)").run(
        `msg_${sessionId}_c${i}`,
        sessionId,
        i % 2 === 0 ? "user" : "assistant",
        JSON.stringify([{ type: "text", text }]),
        Math.floor(Date.now() / 1000),
        JSON.stringify({ userVisible: true, agentVisible: true }),
      ),
    );
  }).immediate();
}

describe.each([
  ["goose-sqlite", sqliteStore],
  ["goose-jsonl", jsonlStore],
] as const)("the kept history (%s)", (_kind, openStore) => {
  it("a later reply reuses it: the history is not read again, and the model gets all of it", async () => {
    const { store, loads } = instrumented(await openStore());
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    await collect(await s.reply(id, "r2", "two", provider, []));
    await collect(await s.reply(id, "r3", "three", provider, []));
    expect(loads()).toBe(1);
    expect(provider.requests.at(-1)).toEqual(["one", "ok", "two", "ok", "three"]);
    // What the copy holds is what the store holds.
    expect((await store.load(id))!.messages.map((m) => textOf(m.content))).toEqual(["one", "ok", "two", "ok", "three", "ok"]);
  });

  it("an extension edit or a summary in between (this process) makes the next reply reload", async () => {
    const { store, loads } = instrumented(await openStore());
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    await s.withAgent(id, async () => undefined);
    await collect(await s.reply(id, "r2", "two", provider, []));
    expect(loads()).toBe(2);
    await s.exclusive(id, "summarize", async () => undefined);
    await collect(await s.reply(id, "r3", "three", provider, []));
    expect(loads()).toBe(3);
  });
});

describe("the kept history when goose writes the same sessions.db", () => {
  it("a message goose added between replies is in the next request", async () => {
    const sqlite = await sqliteStore();
    const { store, loads } = instrumented(sqlite);
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    goose = openLikeGoose(sqlite.path);
    gooseAddsMessage(goose, id, "from goose");
    await collect(await s.reply(id, "r2", "two", provider, []));
    expect(provider.requests.at(-1)).toEqual(["one", "ok", "from goose", "two"]);
    expect(loads()).toBe(2);
  });

  it("goose's compaction (rows deleted and the conversation re-inserted) is what the next request holds", async () => {
    const sqlite = await sqliteStore();
    const { store } = instrumented(sqlite);
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    await collect(await s.reply(id, "r2", "two", provider, []));
    goose = openLikeGoose(sqlite.path);
    gooseReplacesConversation(goose, id, ["summary of one and two", "noted"]);
    await collect(await s.reply(id, "r3", "three", provider, []));
    expect(provider.requests.at(-1)).toEqual(["summary of one and two", "noted", "three"]);
  });

  it("a message goose added while a reply ran is not hidden by the copy that reply kept", async () => {
    const sqlite = await sqliteStore();
    const { store } = instrumented(sqlite);
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    const held = gate();
    provider.hold = held.promise;
    provider.requested = gate();
    const running = collect(await s.reply(id, "r2", "two", provider, []));
    await provider.requested.promise;
    goose = openLikeGoose(sqlite.path);
    gooseAddsMessage(goose, id, "from goose meanwhile");
    held.release();
    await running;
    provider.hold = undefined;
    await collect(await s.reply(id, "r3", "three", provider, []));
    expect(provider.requests.at(-1)).toContain("from goose meanwhile");
  });
});

describe("the kept history when goose writes the same JSONL file", () => {
  it("a line goose appended between replies is in the next request", async () => {
    const jsonl = await jsonlStore();
    const { store, loads } = instrumented(jsonl);
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    await collect(await s.reply(id, "r1", "one", provider, []));
    await appendFile(join(jsonl.dir, `${id}.jsonl`), `${JSON.stringify({ id: null, role: "user", created: 1, content: [{ type: "text", text: "from goose" }] })}\n`);
    await collect(await s.reply(id, "r2", "two", provider, []));
    expect(provider.requests.at(-1)).toEqual(["one", "ok", "from goose", "two"]);
    expect(loads()).toBe(2);
  });
});

describe("a reply's start", () => {
  it("sends the model request while the user's message is stored; deltas come after its message event", async () => {
    const raw = await sqliteStore();
    const { store, append } = instrumented(raw);
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    const stored = gate();
    const real = raw.append.bind(raw);
    let held = true;
    append.override = async (sid, m) => {
      if (held) {
        held = false;
        await stored.promise;
      }
      return real(sid, m);
    };
    const events = collect(await s.reply(id, "r1", "hello", provider, []));
    // The request goes out although the user's message is not stored yet.
    await provider.requested.promise;
    expect((await store.load(id))!.messages).toEqual([]);
    stored.release();
    const kinds = (await events).map((e) => (e.kind === "message" ? `message:${e.message.role}` : e.kind));
    expect(kinds).toEqual(["message:user", "textDelta", "message:assistant", "finished"]);
    expect((await store.load(id))!.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
  });

  it("with a synchronous store (SQLite) the user's message event reaches the reply stream before the model request is built", async () => {
    const store = await sqliteStore();
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    const seen: string[] = [];
    let seenAtRequest: string[] | undefined;
    provider.onRequest = () => (seenAtRequest ??= [...seen]);
    for await (const e of await s.reply(id, "r1", "hello", provider, [])) seen.push(e.event.kind === "message" ? `message:${e.event.message.role}` : e.event.kind);
    // The request's building (the SDK's work) comes after the first event's write, not in front of it.
    expect(seenAtRequest).toEqual(["message:user"]);
    expect(seen).toEqual(["message:user", "textDelta", "message:assistant", "finished"]);
  });

  it("a store that fails before the model request went out: no request is sent, the reply reports the error", async () => {
    const { store, append } = instrumented(await sqliteStore());
    const s = openSlots(store);
    const provider = new RecordingProvider();
    const id = await newSession(store);
    append.override = async () => {
      throw new Error("disk full");
    };
    const got = await collect(await s.reply(id, "r1", "hello", provider, []));
    expect(got.map((e) => e.kind)).toEqual(["error", "finished"]);
    expect(got[0]).toMatchObject({ kind: "error", code: "INTERNAL" });
    expect(provider.requests).toEqual([]);
  });

  it("a failed store of the user's message aborts the model call and the reply reports the error", async () => {
    const { store, append } = instrumented(await sqliteStore());
    const s = openSlots(store);
    const provider = new RecordingProvider();
    provider.hold = new Promise(() => undefined);
    const id = await newSession(store);
    const failed = gate();
    append.override = async () => {
      await provider.requested.promise;
      await failed.promise;
      throw new Error("disk full");
    };
    const events = collect(await s.reply(id, "r1", "hello", provider, []));
    await provider.requested.promise;
    failed.release();
    const got = await events;
    expect(provider.aborted).toBe(true);
    expect(got.map((e) => e.kind)).toEqual(["error", "finished"]);
    expect(got[0]).toMatchObject({ kind: "error", code: "INTERNAL" });
    expect(got[1]).toEqual({ kind: "finished", reason: "error" });
    // Nothing was kept from the failed reply: the next one reads the store again.
    append.override = undefined;
    provider.hold = undefined;
    await collect(await s.reply(id, "r2", "again", provider, []));
    expect(provider.requests.at(-1)).toEqual(["again"]);
  });
});
