import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, openaiCompletion, openaiText, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectGooseFile, readLines } from "./support/goose-file.js";
import { createSession, finishReason, getSession, reply, startHarness, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;

describe("session descriptions", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it("asks the model once per reply with goose's prompt while fewer than 4 user messages, and stores it (≤ 100 chars)", async () => {
    const s = await createSession(h.client);
    const path = join(h.sessionsDir, `${s.id}.jsonl`);
    h.model.enqueueCompletion(openaiCompletion("  Greeting   the\nmodel  "));
    expect(finishReason(await collect(reply(h.client, s.id, "hello there")))).toBe(STOP);
    expect((await readLines(path))[0]!.description).toBe("Greeting the model");
    const asked = h.model.completions.at(-1)!;
    expect(asked.stream).not.toBe(true);
    expect(asked.messages).toEqual([
      { role: "system", content: "Reply with only a description in four words or less" },
      {
        role: "user",
        content:
          "Here are the first few user messages:\nhello there\n\nBased on the conversation so far, provide a concise description of this session in 4 words or less. This will be used for finding the session later in a UI with limited space - reply *ONLY* with the description",
      },
    ]);

    h.model.enqueueCompletion(openaiCompletion("x".repeat(300)));
    await collect(reply(h.client, s.id, "second"));
    expect((await readLines(path))[0]!.description).toBe("x".repeat(100));
    expect(String((h.model.completions.at(-1)!.messages as { content: string }[])[1]!.content)).toMatch(/^Here are the first few user messages:\nhello there\nsecond\n\n/);

    const before = h.model.completions.length;
    await collect(reply(h.client, s.id, "third"));
    await collect(reply(h.client, s.id, "fourth"));
    expect(h.model.completions.length - before).toBe(1);
    await expectGooseFile(path);
  });

  it("a failing description request never fails the reply", async () => {
    const s = await createSession(h.client);
    h.model.enqueueCompletion({ status: 500 });
    expect(finishReason(await collect(reply(h.client, s.id, "hi")))).toBe(STOP);
    expect((await getSession(h.client, s.id)).session!.description).toBe("");
  });

  it("keeps a description the caller gave at CreateSession", async () => {
    const res = await call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: "/tmp", description: "mine" }));
    const before = h.model.completions.length;
    await collect(reply(h.client, res.session!.id, "hi"));
    expect(h.model.completions.length).toBe(before);
    expect((await getSession(h.client, res.session!.id)).session!.description).toBe("mine");
  });
});

describe("compaction", () => {
  let h: Harness;
  beforeAll(async () => {
    // Auto-compaction once the last usage passes 0.8 × 1000 tokens.
    h = await startHarness({ SKEIN_CONTEXT_LIMIT: "1000", SKEIN_AUTO_COMPACT_THRESHOLD: "0.8" });
  });
  afterAll(() => h?.close());

  it("compacts automatically past the threshold, in goose's format, and the next request carries the summary instead of the old messages", async () => {
    const s = await createSession(h.client);
    const path = join(h.sessionsDir, `${s.id}.jsonl`);
    h.model.enqueue({ events: openaiText("Old answer one.", { usage: { prompt: 100, completion: 10 } }) });
    await collect(reply(h.client, s.id, "old question one"));
    h.model.enqueue({ events: openaiText("Recent answer.", { usage: { prompt: 850, completion: 10 } }) });
    await collect(reply(h.client, s.id, "recent question"));
    expect((await readLines(path))[0]!.total_tokens).toBe(860);

    h.model.enqueueCompletion(openaiCompletion("SUMMARY: the user asked old question one.", { prompt: 200, completion: 12 }));
    h.model.enqueue({ events: openaiText("New answer.") });
    expect(finishReason(await collect(reply(h.client, s.id, "new question")))).toBe(STOP);

    const summaryRequest = h.model.completions.find((c) => JSON.stringify(c).includes("Please summarize the conversation history"))!;
    expect(JSON.stringify(summaryRequest.messages)).toContain("old question one");
    expect(JSON.stringify(summaryRequest.messages)).not.toContain("recent question");

    const sent = (h.model.requests.at(-1)!.messages as { role: string; content: unknown }[]).slice(1);
    expect(sent.map((m) => [m.role, m.content])).toEqual([
      ["user", "SUMMARY: the user asked old question one."],
      ["assistant", expect.stringMatching(/^The previous message contains a summary/)],
      ["user", "recent question"],
      ["assistant", "Recent answer."],
      ["user", "new question"],
    ]);

    const [meta, ...lines] = await readLines(path);
    expect(meta!.message_count).toBe(lines.length);
    const shape = lines.map((l) => [l.role, (l.content as { type: string }[]).map((c) => c.type).join(","), l.metadata ?? null]);
    const userOnly = { userVisible: true, agentVisible: false };
    const agentOnly = { userVisible: false, agentVisible: true };
    expect(shape).toEqual([
      ["user", "text", userOnly],
      ["assistant", "text", userOnly],
      ["assistant", "summarizationRequested", userOnly],
      ["user", "text", agentOnly],
      ["assistant", "text", agentOnly],
      ["user", "text", null],
      ["assistant", "text", null],
      ["user", "text", null],
      ["assistant", "text", null],
    ]);
    expect(lines[2]!.content).toEqual([{ type: "summarizationRequested", msg: "Conversation compacted and summarized" }]);
    for (const l of lines) expect(Object.keys(l).filter((k) => !["id", "role", "created", "content", "metadata"].includes(k))).toEqual([]);
    expect((await readFile(path, "utf8")).endsWith("\n")).toBe(true);
  });

  it("SummarizeSession compacts on request and says when there is nothing to summarize", async () => {
    const s = await createSession(h.client);
    await collect(reply(h.client, s.id, "only turn"));
    const nothing = await rejection(call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })));
    expect(nothing.code).toBe(status.FAILED_PRECONDITION);
    expect(nothing.details).toMatch(/nothing to summarize/);

    await collect(reply(h.client, s.id, "second turn"));
    h.model.enqueueCompletion(openaiCompletion("Manual summary."));
    const res = await call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id }));
    expect(res.summary).toBe("Manual summary.");
    expect(res.session!.messageCount).toBe(7);
    h.model.enqueue({ events: openaiText("ok") });
    await collect(reply(h.client, s.id, "after"));
    const sent = (h.model.requests.at(-1)!.messages as { role: string; content: unknown }[]).slice(1).map((m) => m.content);
    expect(sent[0]).toBe("Manual summary.");
    expect(sent).not.toContain("only turn");
  });
});
