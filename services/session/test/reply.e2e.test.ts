import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, gate, openaiMalformed, openaiText, openaiToolCalls, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectGooseFile } from "./support/goose-file.js";
import { STORES, storedMessages } from "./support/stored.js";
import { cases, createSession, eventually, finishReason, getSession, hangUp, isFinished, readUntil, reply, startHarness, watch, type Harness } from "./support/harness.js";

const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;

describe.each(STORES)("Reply on %s", (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_PROVIDER_TIMEOUT_MS: "1000" }, { store });
  });
  afterAll(() => h?.close());
  const stored = (id: string) => storedMessages(h, store, id);

  it("streams a text reply and persists it in goose's format", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("Hello there, friend.", { pieces: 4, usage: { prompt: 30, completion: 7 } }) });
    const events = await collect(reply(h.client, s.id, "say hello", "req-text-1"));
    expect(cases(events)).toEqual(["message", "textDelta", "textDelta", "textDelta", "textDelta", "usage", "message", "finished"]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.every((e) => e.requestId === "req-text-1" && e.sessionId === s.id)).toBe(true);
    expect(finishReason(events)).toBe(STOP);
    const deltas = events.flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : []));
    expect(deltas.join("")).toBe("Hello there, friend.");

    const body = h.model.requests.at(-1)!;
    expect(body).toMatchObject({ model: "fake-model", stream: true, stream_options: { include_usage: true } });
    expect((body.messages as { role: string }[]).map((m) => m.role)).toEqual(["system", "user"]);

    const lines = await stored(s.id);
    expect(lines).toMatchObject([
      { role: "user", content: [{ type: "text", text: "say hello" }] },
      { role: "assistant", content: [{ type: "text", text: "Hello there, friend." }] },
    ]);
    // goose ≤1.9 wrote no message ids; sessions.db rows carry goose's msg_<session>_<uuid>.
    for (const l of lines) expect(l.id).toEqual(store === "goose-jsonl" ? null : expect.stringMatching(new RegExp(`^msg_${s.id}_`)));
    const got = await getSession(h.client, s.id);
    expect(got.session).toMatchObject({ messageCount: 2, totalTokens: 37, inputTokens: 30, outputTokens: 7, accumulatedTotalTokens: 37, runningRequestId: "", lastSeq: 8 });
    expect(got.messages.map((m) => m.role)).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
  });

  it("assembles tool calls split across chunks, answers an unknown tool with an error result and calls the model again", async () => {
    const s = await createSession(h.client);
    h.model.enqueue(
      { events: openaiToolCalls([{ id: "call_a", name: "developer__shell", args: { command: "ls -la", cwd: "/tmp" } }, { id: "call_b", name: "memory__recall", args: {} }], { pieces: 5 }) },
      { events: openaiText("No tools here, sorry.") },
    );
    const before = h.model.requests.length;
    const events = await collect(reply(h.client, s.id, "list files"));
    expect(finishReason(events)).toBe(STOP);
    expect(h.model.requests.length - before).toBe(2);
    const second = h.model.requests.at(-1)!.messages as Record<string, unknown>[];
    expect(second.slice(2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_a", type: "function", function: { name: "developer__shell", arguments: JSON.stringify({ command: "ls -la", cwd: "/tmp" }) } },
          { id: "call_b", type: "function", function: { name: "memory__recall", arguments: "{}" } },
        ],
      },
      { role: "tool", tool_call_id: "call_a", content: "Error: tool developer__shell does not exist" },
      { role: "tool", tool_call_id: "call_b", content: "Error: tool memory__recall does not exist" },
    ]);
    const lines = await stored(s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(lines[1]!.content).toEqual([
      { type: "toolRequest", id: "call_a", toolCall: { status: "success", value: { name: "developer__shell", arguments: { command: "ls -la", cwd: "/tmp" } } } },
      { type: "toolRequest", id: "call_b", toolCall: { status: "success", value: { name: "memory__recall", arguments: {} } } },
    ]);
    expect(lines[2]!.content).toEqual([
      { type: "toolResponse", id: "call_a", toolResult: { status: "error", error: "tool developer__shell does not exist" } },
      { type: "toolResponse", id: "call_b", toolResult: { status: "error", error: "tool memory__recall does not exist" } },
    ]);
    const messageEvents = events.filter((e) => e.event?.$case === "message");
    expect(messageEvents).toHaveLength(4);
  });

  it("keeps unparseable tool arguments as a toolCall error, answered with an error", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_bad", name: "x__y", args: '{"a": 1,,' }]) }, { events: openaiText("ok") });
    expect(finishReason(await collect(reply(h.client, s.id, "go")))).toBe(STOP);
    const lines = await stored(s.id);
    expect((lines[1]!.content as { toolCall: { status: string } }[])[0]!.toolCall.status).toBe("error");
    expect((lines[2]!.content as { toolResult: { status: string } }[])[0]!.toolResult.status).toBe("error");
  });

  it("drives the run to its end and persists it when the client hangs up after the first event", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("a slow answer that keeps streaming", { pieces: 8 }), delayMs: 60 });
    const stream = reply(h.client, s.id, "take your time");
    const first = await readUntil(stream, () => true);
    expect(cases(first)).toEqual(["message"]);
    hangUp(stream);
    await eventually(() => getSession(h.client, s.id), (g) => g.session!.runningRequestId === "" && g.messages.length === 2);
    const lines = await stored(s.id);
    expect(lines[1]).toMatchObject({ role: "assistant", content: [{ type: "text", text: "a slow answer that keeps streaming" }] });
    const watcher = watch(h.client, s.id, 0);
    const replayed = await readUntil(watcher, isFinished);
    hangUp(watcher);
    expect(finishReason(replayed)).toBe(STOP);
    expect(h.model.activeResponses).toBe(0);
  });

  it("refuses a second Reply while one runs, naming the running request", async () => {
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue({ events: openaiText("held"), holdAfter: 2, hold: hold.promise });
    const first = reply(h.client, s.id, "one", "req-busy-1");
    await readUntil(first, (e) => e.event?.$case === "textDelta");
    const err = await rejection(collect(reply(h.client, s.id, "two")));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(new RegExp(`session ${s.id} is busy with request req-busy-1`));
    hold.release();
    expect(finishReason(await collect(first))).toBe(STOP);
    expect(finishReason(await collect(reply(h.client, s.id, "three")))).toBe(STOP);
  });

  it("CancelReply aborts the provider request and ends the run with finished{cancelled}", async () => {
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue({ events: openaiText("never finished"), holdAfter: 2, hold: hold.promise });
    const stream = reply(h.client, s.id, "cancel me", "req-cancel-1");
    const seen = await readUntil(stream, (e) => e.event?.$case === "textDelta");
    expect(await call(h.client, h.client.cancelReply, { sessionId: s.id, requestId: "other-request" })).toEqual({ cancelled: false });
    expect(await call(h.client, h.client.cancelReply, { sessionId: s.id, requestId: "req-cancel-1" })).toEqual({ cancelled: true });
    const rest = await collect(stream);
    expect(finishReason([...seen, ...rest])).toBe(CANCELLED);
    await eventually(() => h.model.activeResponses, (n) => n === 0);
    hold.release();
    // What the model said before the cancel stays in the history, so it never shows two user turns in a row.
    const streamed = [...seen, ...rest].flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : [])).join("");
    expect(streamed).not.toBe("");
    const lines = await stored(s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant"]);
    expect(JSON.stringify(lines[1]!.content)).toContain(JSON.stringify(streamed).slice(1, -1));
    expect(await call(h.client, h.client.cancelReply, { sessionId: s.id, requestId: "" })).toEqual({ cancelled: false });
    expect(finishReason(await collect(reply(h.client, s.id, "again")))).toBe(STOP);
  });

  it("a reply cancelled before the model said anything is answered in the history, as goose answers an interruption", async () => {
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue({ events: openaiText("too late"), holdAfter: 0, hold: hold.promise });
    const stream = reply(h.client, s.id, "cancel me early", "req-cancel-2");
    const seen = await readUntil(stream, (e) => e.event?.$case === "message");
    expect(await call(h.client, h.client.cancelReply, { sessionId: s.id, requestId: "req-cancel-2" })).toEqual({ cancelled: true });
    const rest = await collect(stream);
    expect(finishReason([...seen, ...rest])).toBe(CANCELLED);
    hold.release();
    const lines = await stored(s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant"]);
    expect(JSON.stringify(lines[1]!.content)).toContain("interrupted before the model answered");
    expect(finishReason(await collect(reply(h.client, s.id, "again")))).toBe(STOP);
    expect((await stored(s.id)).map((l) => l.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  describe("provider failures end the run with an error event, and the session stays usable", () => {
    it.each([
      ["HTTP 500", { status: 500 }, "PROVIDER_HTTP_ERROR", /HTTP 500/],
      ["connection cut mid-stream", { events: openaiText("partial answer", { pieces: 3 }).slice(0, 3), ending: "cut" as const }, "PROVIDER_STREAM_CUT", /broke off|ended before/],
      ["stream ended without finishing", { events: openaiText("partial", { pieces: 2 }).slice(0, 2) }, "PROVIDER_STREAM_CUT", /finish_reason/],
      ["stall", { events: openaiText("x").slice(0, 2), ending: "stall" as const }, "PROVIDER_TIMEOUT", /sent nothing for 1000 ms/],
      ["stall before any byte", { events: [], ending: "stall" as const }, "PROVIDER_TIMEOUT", /sent nothing/],
      ["malformed stream", { events: openaiMalformed() }, "PROVIDER_MALFORMED_STREAM", /not valid JSON/],
      ["error object in the stream", { events: [openaiText("ok", { pieces: 1 })[1]!, { data: JSON.stringify({ error: { message: "rate limited mid-stream" } }) }] }, "PROVIDER_ERROR", /reported an error: rate limited mid-stream/],
    ])("%s", async (_name, script, code, message) => {
      const s = await createSession(h.client);
      h.model.enqueue(script);
      const events = await collect(reply(h.client, s.id, "fail please"));
      const errors = events.flatMap((e) => (e.event?.$case === "error" ? [e.event.value] : []));
      expect(errors).toHaveLength(1);
      expect(errors[0]!.code).toBe(code);
      expect(errors[0]!.message).toMatch(message);
      expect(cases(events).slice(-2)).toEqual(["error", "finished"]);
      expect(finishReason(events)).toBe(ERROR);
      await eventually(() => h.model.activeResponses, (n) => n === 0);
      expect(finishReason(await collect(reply(h.client, s.id, "and now?")))).toBe(STOP);
      const lines = await stored(s.id);
      expect(lines.map((l) => l.role)).toEqual(["user", "user", "assistant"]);
    });
  });
});

describe("max turns", () => {
  let hm: Harness;
  beforeAll(async () => {
    hm = await startHarness({ SKEIN_MAX_TURNS: "2" });
  });
  afterAll(() => hm?.close());

  it("stops after SKEIN_MAX_TURNS model calls with finished{max_turns} and says so", async () => {
    hm.model.setFallback(() => ({ events: openaiToolCalls([{ id: `call_${Math.random().toString(36).slice(2)}`, name: "loop__again", args: {} }]) }));
    const s = await createSession(hm.client);
    const events = await collect(reply(hm.client, s.id, "loop forever"));
    expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_MAX_TURNS);
    expect(hm.model.requests).toHaveLength(2);
    const lines = await expectGooseFile(join(hm.sessionsDir, `${s.id}.jsonl`));
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant", "user", "assistant", "user", "assistant"]);
    expect(JSON.stringify(lines.at(-1))).toMatch(/maximum number of turns \(2\)/);
  });
});
