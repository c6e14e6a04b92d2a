// The session domain's core rules, in process over one shared fixture (sessions-fixture.ts):
// Sessions with its slots on a real goose sessions.db, a scripted provider, no gRPC server.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { COMPACTION_MARKER } from "../../src/agent-loop/compaction.js";
import { DESCRIPTION_SYSTEM } from "../../src/agent-loop/description.js";
import { textOf, sessionMode } from "@skein/goose-sessions/goose-format";
import type { SessionEvent } from "../../src/runs/events.js";
import { approvalEntry } from "../extensions/helpers.js";
import { codeOf, collect, finishedOf, openDomain, type Domain } from "./sessions-fixture.js";

let d: Domain | undefined;

afterEach(async () => {
  await d?.close();
  d = undefined;
});

async function domain(over: Parameters<typeof openDomain>[0] = {}): Promise<Domain> {
  d = await openDomain(over);
  return d;
}

/** Sends `text` and reads the reply to its `finished`. */
async function reply(dom: Domain, id: string, text: string, requestId = randomUUID()): Promise<SessionEvent[]> {
  return collect(await dom.sessions.reply(id, text, requestId, []));
}

describe("Sessions (in process)", () => {
  it("describes a session after its first replies with the model's words; a caller's description is kept", async () => {
    const dom = await domain();
    const { id } = await dom.sessions.create(dom.dir, undefined, [], undefined);
    dom.provider.answer("Fixing the build");
    expect(finishedOf(await reply(dom, id, "the build fails"))).toEqual({ kind: "finished", reason: "stop" });
    expect(dom.provider.completions.map((c) => c.system)).toEqual([DESCRIPTION_SYSTEM]);
    expect((await dom.sessions.get(id, false)).metadata.description).toBe("Fixing the build");

    await dom.sessions.update(id, undefined, "mine");
    await reply(dom, id, "and the tests");
    expect(dom.provider.completions).toHaveLength(1);
    expect((await dom.sessions.get(id, false)).metadata.description).toBe("mine");

    const given = await dom.sessions.create(dom.dir, "named by the caller", [], undefined);
    await reply(dom, given.id, "hello");
    expect(dom.provider.completions).toHaveLength(1);
    expect((await dom.sessions.get(given.id, false)).metadata.description).toBe("named by the caller");
  });

  it("stores a reply's last message with the update that closes its run (one commit); the messages before it on their own", async () => {
    const dom = await domain();
    // Named by the caller: no description call runs beside the reply.
    const { id } = await dom.sessions.create(dom.dir, "named", [], undefined);
    const writes: string[] = [];
    const { store } = dom;
    const append = store.append.bind(store);
    const appendClosing = store.appendClosing.bind(store);
    store.append = (sid, m) => (writes.push(`append ${m.role}`), append(sid, m));
    store.appendClosing = (sid, m, update, count) => (writes.push(`closing ${m.role} (${count} messages)`), appendClosing(sid, m, update, count));
    dom.provider.enqueue({ toolCalls: [{ id: "c1", name: "nothing__here", args: {} }] }, { text: "done", usage: { input: 20, output: 4, total: 24 } });
    expect(finishedOf(await reply(dom, id, "go"))).toEqual({ kind: "finished", reason: "stop" });
    // The user's message, the tool call, its (error) result; then the answer and the tokens together.
    expect(writes).toEqual(["append user", "append assistant", "append user", "closing assistant (4 messages)"]);
    const s = await dom.store.load(id);
    expect(textOf(s!.messages.at(-1)!.content)).toBe("done");
    expect(s!.metadata).toMatchObject({ total_tokens: 24, accumulated_total_tokens: 15 + 24, message_count: 4 });
  });

  it("SummarizeSession compacts the stored history behind goose's marker; the model then gets the summary", async () => {
    const dom = await domain();
    const { id } = await dom.sessions.create(dom.dir, "d", [], undefined);
    await reply(dom, id, "first question");
    expect(await codeOf(dom.sessions.summarize(id))).toBe(status.FAILED_PRECONDITION);
    await reply(dom, id, "second question");
    dom.provider.answer("the user asked two questions");
    const { summary } = await dom.sessions.summarize(id);
    expect(summary).toBe("the user asked two questions");
    const loaded = await dom.sessions.get(id, true);
    const stored = "messages" in loaded ? loaded.messages : [];
    // sessions.db stores goose's marker as its newer form (a systemNotification): the text is what stays.
    expect(stored.some((m) => JSON.stringify(m.content).includes(COMPACTION_MARKER))).toBe(true);

    await reply(dom, id, "third question");
    const sent = dom.provider.streams.at(-1)!.messages.map((m) => textOf(m.content));
    expect(sent).toContain("the user asked two questions");
    expect(sent).not.toContain("first question");
    expect(sent.at(-1)).toBe("third question");
  });

  it("compacts before a reply once the last usage passes the threshold of the context limit", async () => {
    const dom = await domain({ compaction: { threshold: 0.5, contextLimit: 100 } });
    const { id } = await dom.sessions.create(dom.dir, "d", [], undefined);
    dom.provider.enqueue({ text: "one", usage: { input: 8, output: 2, total: 10 } }, { text: "two", usage: { input: 70, output: 10, total: 80 } });
    await reply(dom, id, "first");
    // 80 of 100 tokens used, but nothing older than the last turn to summarize yet.
    await reply(dom, id, "second");
    expect(dom.provider.completions).toHaveLength(0);
    dom.provider.answer("summary of the first turn");
    await reply(dom, id, "third");
    expect(dom.provider.completions).toHaveLength(1);
    const sent = dom.provider.streams.at(-1)!.messages.map((m) => textOf(m.content));
    expect(sent).toContain("summary of the first turn");
    expect(sent).not.toContain("first");
    expect(sent.slice(-3)).toEqual(["second", "two", "third"]);
  });

  it("a second Reply while one runs is FAILED_PRECONDITION naming the running request; CancelReply ends it cancelled", async () => {
    const dom = await domain();
    const { id } = await dom.sessions.create(dom.dir, "d", [], undefined);
    const release = dom.provider.hold();
    const running = await dom.sessions.reply(id, "long one", "req-1", []);
    await dom.provider.streamed(1);
    await expect(dom.sessions.reply(id, "another", "req-2", [])).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, message: expect.stringContaining("req-1") });
    expect((await dom.sessions.live([id])).get(id)).toMatchObject({ runningRequestId: "req-1" });

    expect(await dom.sessions.cancel(id, "req-1")).toBe(true);
    expect(finishedOf(await collect(running))).toEqual({ kind: "finished", reason: "cancelled" });
    release();
    expect(await dom.sessions.cancel(id, "")).toBe(false);
    expect(finishedOf(await reply(dom, id, "again"))).toEqual({ kind: "finished", reason: "stop" });
    expect(await codeOf(dom.sessions.cancel("20990101_1", ""))).toBe(status.NOT_FOUND);
  });

  it("permission modes: chat offers no tools, auto runs them, approve pauses until ConfirmToolCall", async () => {
    const dom = await domain({ defaultMode: "chat" });
    const logFile = join(dom.dir, "approval.log");
    const ext = { name: "ap", cmd: process.execPath, args: [approvalEntry], env: { APPROVAL_LOG: logFile } };
    const { id, metadata } = await dom.sessions.create(dom.dir, "d", [ext], undefined);
    expect(sessionMode(metadata)).toBe("chat");
    await reply(dom, id, "just talk");
    expect(dom.provider.streams.at(-1)!.tools).toEqual([]);

    await dom.sessions.update(id, "auto", undefined);
    dom.provider.enqueue({ toolCalls: [{ id: "call_1", name: "ap__append", args: { line: "auto" } }] }, { text: "done" });
    expect(finishedOf(await reply(dom, id, "append auto"))).toEqual({ kind: "finished", reason: "stop" });
    expect(await readFile(logFile, "utf8")).toBe("auto\n");

    await dom.sessions.update(id, "approve", undefined);
    dom.provider.enqueue({ toolCalls: [{ id: "call_2", name: "ap__append", args: { line: "asked" } }] }, { text: "done" });
    const stream = (await dom.sessions.reply(id, "append asked", "req-a", []))[Symbol.asyncIterator]();
    const seen: SessionEvent[] = [];
    while (!seen.some((e) => e.event.kind === "approval")) seen.push((await stream.next()).value as SessionEvent);
    expect(seen.at(-1)!.event).toMatchObject({ kind: "approval", approval: { id: "call_2", toolName: "ap__append" } });
    await expect(dom.sessions.reply(id, "meanwhile", "req-b", [])).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    await expect(readFile(logFile, "utf8")).resolves.toBe("auto\n");

    await dom.sessions.confirm(id, "call_2", "allow_once", { requestId: "confirm-1", peer: "in-process" });
    for (let r = await stream.next(); !r.done; r = await stream.next()) seen.push(r.value);
    expect(finishedOf(seen)).toEqual({ kind: "finished", reason: "stop" });
    expect(await readFile(logFile, "utf8")).toBe("auto\nasked\n");
  });
});
