// The session slot's state machine: run, cancel, delete, evict, reload and the replay budget,
// in the interleavings that matter. Real JSONL store in a temp dir; a scripted in-process provider.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { gate } from "@skein/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata } from "@skein/goose-sessions/goose-format";
import { ProviderAbortedError, type ModelChunk, type ModelRequest, type Provider } from "../../src/providers/provider.js";
import type { SessionEvent } from "../../src/runs/events.js";
import { slotsOptions } from "./sessions-fixture.js";
import { SessionSlots, type SessionSlotsOptions } from "../../src/slots/session-slots.js";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";

const log = pino({ level: "silent" });

/** Answers "ok" in one delta, or, with `hold`, waits (aborting with the run's signal, after `onAbort` settles). */
class ScriptedProvider implements Provider {
  readonly name = "scripted";
  readonly model = "m";
  hold: Promise<void> | undefined;
  onAbort: Promise<void> = Promise.resolve();
  started = 0;

  async complete(): Promise<never> {
    throw new Error("no completions here");
  }

  async *stream(req: ModelRequest): AsyncIterable<ModelChunk[]> {
    this.started++;
    if (this.hold) {
      // The run may be stopped before its model call starts: a signal aborted already fires no event.
      const aborted = new Promise<void>((r) => (req.signal.aborted ? r() : req.signal.addEventListener("abort", () => r(), { once: true })));
      await Promise.race([this.hold, aborted]);
      if (req.signal.aborted) {
        await this.onAbort;
        throw new ProviderAbortedError("aborted");
      }
    }
    yield [{ type: "text", text: "ok" }];
    yield [{ type: "done", stopReason: "stop" }];
  }
}

async function collect(events: AsyncIterable<SessionEvent>): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const finished = (events: SessionEvent[]) => events.map((e) => e.event).find((e) => e.kind === "finished");

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

let dir: string;
let store: JsonlSessionStore;
let provider: ScriptedProvider;
let slots: SessionSlots;

function open(over: Partial<SessionSlotsOptions> = {}): SessionSlots {
  return new SessionSlots(slotsOptions(dir, store, over));
}

async function newSession(): Promise<string> {
  const { id } = await store.create({ ...defaultMetadata(dir, "d"), skein: { description_user_set: true } });
  return id;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-slots-"));
  store = await JsonlSessionStore.open(join(dir, "sessions"), log, { syncEachMessage: false });
  provider = new ScriptedProvider();
  slots = open();
});

afterEach(async () => {
  await slots.shutdown(AbortSignal.abort());
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("SessionSlots", () => {
  it("runs a reply to finished{stop}; the slot is idle again at once and a second run numbers on", async () => {
    const id = await newSession();
    const first = await collect(await slots.reply(id, "r1", "hi", provider, []));
    expect(finished(first)).toEqual({ kind: "finished", reason: "stop" });
    expect(slots.runningRequest(id)).toBeUndefined();
    const second = await collect(await slots.reply(id, "r2", "again", provider, []));
    expect(second[0]!.seq).toBe(first.at(-1)!.seq + 1);
    expect(slots.lastSeq(id)).toBe(second.at(-1)!.seq);
  });

  it("a second reply or a summary while one runs is busy, naming the running request", async () => {
    const id = await newSession();
    const held = gate();
    provider.hold = held.promise;
    const running = collect(await slots.reply(id, "r1", "hi", provider, []));
    expect(slots.runningRequest(id)).toBe("r1");
    await expect(slots.reply(id, "r2", "x", provider, [])).rejects.toThrow(/busy with request r1/);
    await expect(slots.exclusive(id, "summarize", async () => 1)).rejects.toThrow(/busy with request r1/);
    held.release();
    expect(finished(await running)).toEqual({ kind: "finished", reason: "stop" });
  });

  it("cancel stops only the named request and waits for finished{cancelled}", async () => {
    const id = await newSession();
    provider.hold = new Promise(() => undefined);
    const running = collect(await slots.reply(id, "r1", "hi", provider, []));
    expect(await slots.cancel(id, "other")).toBe(false);
    expect(await slots.cancel(id, "r1")).toBe(true);
    expect(slots.runningRequest(id)).toBeUndefined();
    expect(finished(await running)).toEqual({ kind: "finished", reason: "cancelled" });
    expect(await slots.cancel(id)).toBe(false);
  });

  it("Delete racing Reply: a Reply that arrives while Delete waits for the cancelled run finds the session gone (defect 2)", async () => {
    const id = await newSession();
    provider.hold = new Promise(() => undefined);
    const cancelling = gate();
    provider.onAbort = cancelling.promise;
    const events = await slots.reply(id, "r1", "hi", provider, []);
    while (provider.started === 0) await new Promise((r) => setImmediate(r));
    const deleting = slots.delete(id);
    // Delete holds the session now and waits for the run to end; a Reply arrives in that window.
    await new Promise((r) => setImmediate(r));
    const late = slots.reply(id, "r2", "sneaking in", provider, []);
    // And once more right as the cancelled run publishes `finished` (the old window between "not busy" and the unlink).
    const seen: SessionEvent[] = [];
    let atFinished: Promise<unknown> | undefined;
    const read = (async () => {
      for await (const e of events) {
        seen.push(e);
        if (e.event.kind === "finished") atFinished = slots.reply(id, "r3", "at finished", provider, []);
      }
    })();
    cancelling.release();
    expect(await deleting).toBe(true);
    await read;
    expect(finished(seen)).toEqual({ kind: "finished", reason: "cancelled" });
    expect(await codeOf(late)).toBe(status.NOT_FOUND);
    expect(await codeOf(atFinished!)).toBe(status.NOT_FOUND);
    expect(provider.started).toBe(1);
    expect(await store.info(id)).toBeUndefined();
    expect(slots.running).toBe(0);
    expect(slots.liveAgents).toBe(0);
  });

  it("a watcher of a deleted session is ended", async () => {
    const id = await newSession();
    const watching = collect(slots.watch(id, 0, []));
    expect(await slots.delete(id)).toBe(true);
    expect(await watching).toEqual([]);
    expect(await slots.delete(id)).toBe(false);
  });

  it("evicts the least recently used idle agent at the cap, never a running one, and reloads it with numbering going on", async () => {
    await slots.shutdown(AbortSignal.abort());
    slots = open({ maxLive: 1 });
    const a = await newSession();
    const b = await newSession();
    const first = await collect(await slots.reply(a, "r1", "hi", provider, []));
    await slots.withAgent(b, async () => undefined);
    expect(slots.evictions).toBe(1);
    expect(slots.liveAgents).toBe(1);
    // b runs (held): a cannot load while the only agent is busy.
    provider.hold = new Promise(() => undefined);
    const running = collect(await slots.reply(b, "r2", "hold", provider, []));
    expect(await codeOf(slots.withAgent(a, async () => undefined))).toBe(status.RESOURCE_EXHAUSTED);
    await slots.cancel(b);
    await running;
    provider.hold = undefined;
    const again = await collect(await slots.reply(a, "r3", "back", provider, []));
    expect(again[0]!.seq).toBe(first.at(-1)!.seq + 1);
    expect(slots.evictions).toBe(2);
  });

  it("a session whose window was released and whose agent is then evicted at the cap is not held; it numbers on when it comes back", async () => {
    await slots.shutdown(AbortSignal.abort());
    slots = open({ maxLive: 2, eventBufferTotal: 1 });
    const [a, b, c] = [await newSession(), await newSession(), await newSession()];
    const first = await collect(await slots.reply(a, "r1", "hi", provider, []));
    // b's run ends over the budget: a's window goes (a keeps its agent).
    await collect(await slots.reply(b, "r1", "hi", provider, []));
    // c needs a's agent slot: with window and agent gone, nothing of a is left to hold but its last seq.
    await collect(await slots.reply(c, "r1", "hi", provider, []));
    expect(slots.evictions).toBe(1);
    expect(slots.liveAgents).toBe(2);
    expect(slots.held).toBe(2);
    expect(slots.lastSeq(a)).toBe(first.at(-1)!.seq);
    const again = await collect(await slots.reply(a, "r2", "back", provider, []));
    expect(again[0]!.seq).toBe(first.at(-1)!.seq + 1);
  });

  it("over the total replay budget, idle sessions' windows go first; their cursors get OUT_OF_RANGE, never a gap", async () => {
    await slots.shutdown(AbortSignal.abort());
    slots = open({ eventBufferTotal: 10 });
    const ids = [await newSession(), await newSession(), await newSession()];
    const watched = ids[2]!;
    const lastOf: number[] = [];
    for (const id of ids.slice(0, 2)) lastOf.push((await collect(await slots.reply(id, "r", "hi", provider, []))).at(-1)!.seq);
    // The third session has a watcher: its window stays however full the budget is.
    const stop = new AbortController();
    const follower = slots.watch(watched, 0, [stop.signal])[Symbol.asyncIterator]();
    const firstSeen = follower.next();
    await collect(await slots.reply(watched, "r", "hi", provider, []));
    expect(slots.bufferedEvents).toBeLessThanOrEqual(10 + 100);
    expect((await firstSeen).value?.seq).toBe(1);
    // The least recently used idle session lost its window: a cursor into it must reload…
    expect(() => slots.watch(ids[0]!, 0, [])).toThrow(/no longer buffered/);
    // …but a cursor at its last seq is fine, and numbering goes on.
    const caughtUp = slots.watch(ids[0]!, lastOf[0]!, [stop.signal])[Symbol.asyncIterator]();
    const next = caughtUp.next();
    const more = await collect(await slots.reply(ids[0]!, "r2", "more", provider, []));
    expect((await next).value?.seq).toBe(lastOf[0]! + 1);
    expect(more[0]!.seq).toBe(lastOf[0]! + 1);
    stop.abort();
  });

  it("exclusive work holds the session; delete cancels it first", async () => {
    const id = await newSession();
    const started = gate();
    const work = slots.exclusive(id, "summarize", (signal) => {
      started.release();
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
    });
    const workCode = codeOf(work);
    await started.promise;
    expect(slots.runningRequest(id)).toBe("summarize");
    await expect(slots.reply(id, "r1", "x", provider, [])).rejects.toThrow(/busy with request summarize/);
    expect(await slots.delete(id)).toBe(true);
    expect(await workCode).toBe(status.CANCELLED);
  });

  it("persists a new seq epoch for the first run of an instance, so another instance numbers above it", async () => {
    const id = await newSession();
    const first = await collect(await slots.reply(id, "r1", "hi", provider, []));
    expect(first[0]!.seq).toBe(1);
    await slots.shutdown(AbortSignal.abort());
    slots = open();
    expect(slots.lastSeq(id)).toBe(0);
    expect(() => slots.watch(id, first.at(-1)!.seq, [])).toThrow(/ahead of/);
    const second = await collect(await slots.reply(id, "r2", "hi", provider, []));
    expect(second[0]!.seq).toBe(2 ** 32 + 1);
  });
});
