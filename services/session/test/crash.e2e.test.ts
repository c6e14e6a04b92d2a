import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { collect, gate, openaiText, openaiToolCalls } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { expectGooseFile } from "./support/goose-file.js";
import { STORES, storedMessages } from "./support/stored.js";
import { cases, createSession, finishReason, getSession, hangUp, readUntil, reply, startHarness, type Harness } from "./support/harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("crash safety on goose-jsonl (goose-sqlite: sqlite.e2e.test.ts)", () => {
  it("kill -9 mid-reply leaves a file goose can read; the session continues after a restart", async () => {
    h = await startHarness();
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue(
      { events: openaiToolCalls([{ id: "call_1", name: "developer__shell", args: { command: "pwd" } }]) },
      { events: openaiText("never completes", { pieces: 4 }), holdAfter: 3, hold: hold.promise },
    );
    const stream = reply(h.client, s.id, "work, then die");
    await readUntil(stream, (e) => e.event?.$case === "textDelta");
    hangUp(stream);
    await h.restart();
    hold.release();
    const path = join(h.sessionsDir, `${s.id}.jsonl`);
    const text = await readFile(path, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    // The metadata line is the one from before the run; every message line is complete JSON.
    const lines = text.slice(0, -1).split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ message_count: 0 });
    expect(lines.slice(1).map((l) => l.role)).toEqual(["user", "assistant", "user"]);
    const got = await getSession(h.client, s.id);
    expect(got.messages).toHaveLength(3);

    h.model.enqueue({ events: openaiText("back again") });
    expect(finishReason(await collect(reply(h.client, s.id, "are you there?")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const after = await expectGooseFile(path);
    expect(after.map((l) => l.role)).toEqual(["user", "assistant", "user", "user", "assistant"]);
  });

  it("answers a tool request left unanswered by a crash before the next model call", async () => {
    h = await startHarness();
    const s = await createSession(h.client);
    const path = join(h.sessionsDir, `${s.id}.jsonl`);
    await appendFile(
      path,
      `${JSON.stringify({ id: null, role: "user", created: 1753704324, content: [{ type: "text", text: "run it" }] })}\n` +
        `${JSON.stringify({ id: null, role: "assistant", created: 1753704325, content: [{ type: "toolRequest", id: "call_x", toolCall: { status: "success", value: { name: "developer__shell", arguments: {} } } }] })}\n`,
    );
    h.model.enqueue({ events: openaiText("ok") });
    expect(finishReason(await collect(reply(h.client, s.id, "continue")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const lines = await expectGooseFile(path);
    expect(lines[2]).toMatchObject({ role: "user", content: [{ type: "toolResponse", id: "call_x", toolResult: { status: "error" } }] });
    const sent = h.model.requests.at(-1)!.messages as { role: string }[];
    expect(sent.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "user"]);
  });
});

describe.each(STORES)("shutdown on %s", (store) => {
  it("lets a run finish within the grace period", async () => {
    h = await startHarness({ SKEIN_SHUTDOWN_GRACE_MS: "5000" }, { store });
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("finishing during shutdown", { pieces: 5 }), delayMs: 100 });
    const stream = reply(h.client, s.id, "go");
    await readUntil(stream, (e) => e.event?.$case === "textDelta");
    const events = collect(stream);
    const exit = await h.svc.stop("SIGTERM");
    expect(exit.code).toBe(0);
    expect(finishReason(await events)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const lines = await storedMessages(h, store, s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant"]);
  });

  it("cancels a run still going when the grace period ends: the client gets finished{cancelled}, then the stream ends; the store is valid", async () => {
    h = await startHarness({ SKEIN_SHUTDOWN_GRACE_MS: "300" }, { store });
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue({ events: openaiText("held forever"), holdAfter: 2, hold: hold.promise });
    const stream = reply(h.client, s.id, "go");
    await readUntil(stream, (e) => e.event?.$case === "textDelta");
    const rest = collect(stream);
    const exit = await h.svc.stop("SIGTERM");
    hold.release();
    expect(exit.code).toBe(0);
    // The stream ends normally (status OK), its last event the run's finished{cancelled}.
    const events = await rest;
    expect(cases(events).at(-1)).toBe("finished");
    expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
    expect(h.svc.logs.some((l) => l.msg === "run finished" && l.reason === "cancelled")).toBe(true);
    // What the model streamed before the stop is kept (a cancelled reply never leaves the history on a user turn).
    const lines = await storedMessages(h, store, s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant"]);
  });
});
