import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, openaiText, openaiToolCalls, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWith, fixtureExt } from "./support/extensions.js";
import { cases, finishReason, isFinished, readUntil, reply, startHarness, watch, hangUp, type Client, type Event, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;
const NINE_MB = 9_000_000;

/** Two 9 MB tool results in one turn: together an 18 MB message, over any gRPC limit. */
function twoHugeToolResults(h: Harness): void {
  h.model.enqueue(
    {
      events: openaiToolCalls([
        { id: "call_big_1", name: "fixture__big", args: { chars: NINE_MB } },
        { id: "call_big_2", name: "fixture__big", args: { chars: NINE_MB } },
      ]),
    },
    { events: openaiText("That was a lot of x.") },
  );
}

function getPage(c: Client, sessionId: string, messagePageSize = 0, messagePageToken = ""): Promise<pb.GetSessionResponse> {
  return call(c, c.getSession, pb.GetSessionRequest.fromPartial({ sessionId, includeMessages: true, messagePageSize, messagePageToken }));
}

/** Every message of a session, page after page, and the number of pages. */
async function allPages(c: Client, sessionId: string, pageSize = 0): Promise<{ messages: pb.Message[]; pages: number; messageCount: number }> {
  const messages: pb.Message[] = [];
  let token = "";
  let pages = 0;
  let messageCount = 0;
  do {
    const res = await getPage(c, sessionId, pageSize, token);
    messages.push(...res.messages);
    messageCount = res.session!.messageCount;
    token = res.nextMessagePageToken;
    pages++;
  } while (token !== "" && pages < 1000);
  return { messages, pages, messageCount };
}

const toolResponses = (m: pb.Message) => m.content.flatMap((c) => (c.kind?.$case === "toolResponse" ? [c.kind.value] : []));
const texts = (r: pb.ToolResponse) => r.content.map((i) => String(i.text));
const deltaText = (events: Event[]) => events.flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : [])).join("");

describe("session size limits", () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "skein-limits-work-"));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  describe("with the default caps", () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ SKEIN_PROVIDER_TIMEOUT_MS: "1000" });
    });
    afterAll(() => h?.close());

    it("cuts tool results over SKEIN_MAX_TOOL_RESULT_CHARS with a note the model and the user read; Reply, GetSession and WatchSession all work", async () => {
      const s = await createWith(h.client, work, [fixtureExt()]);
      twoHugeToolResults(h);
      const before = h.model.requests.length;
      const events = await collect(reply(h.client, s.id, "make a lot of output"));
      expect(finishReason(events)).toBe(STOP);

      const note = /larger \(9000000 characters\) than the limit of 200000 characters \(SKEIN_MAX_TOOL_RESULT_CHARS\)/;
      const toModel = (h.model.requests[before + 1]!.messages as { role: string; content: string }[]).filter((m) => m.role === "tool");
      expect(toModel).toHaveLength(2);
      for (const m of toModel) {
        expect(m.content.startsWith("x".repeat(200_000))).toBe(true);
        expect(m.content).toMatch(note);
        expect(m.content.length).toBeLessThan(201_000);
      }

      const got = await getPage(h.client, s.id);
      expect(got.nextMessagePageToken).toBe("");
      expect(got.messages.map((m) => m.role)).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT, pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
      for (const r of toolResponses(got.messages[2]!)) {
        const [head, tail] = texts(r);
        expect(head === "x".repeat(200_000)).toBe(true);
        expect(tail).toMatch(note);
      }
      expect(got.messages.every((m) => !m.truncated)).toBe(true);

      const watcher = watch(h.client, s.id, 0);
      const replayed = await readUntil(watcher, isFinished);
      hangUp(watcher);
      expect(replayed.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    });

    it("reports an extension result over the 10 MiB MCP message limit as too large (not as a crash), and the extension serves the next call", async () => {
      const s = await createWith(h.client, work, [fixtureExt()]);
      h.model.enqueue(
        { events: openaiToolCalls([{ id: "call_huge", name: "fixture__big", args: { chars: 11_000_000 } }]) },
        { events: openaiToolCalls([{ id: "call_pid", name: "fixture__pid", args: {} }]) },
        { events: openaiText("done") },
      );
      const before = h.model.requests.length;
      expect(finishReason(await collect(reply(h.client, s.id, "too much")))).toBe(STOP);
      const toolMessages = (n: number) => (h.model.requests[before + n]!.messages as { role: string; tool_call_id?: string; content: string }[]).filter((m) => m.role === "tool");
      const huge = toolMessages(1).find((m) => m.tool_call_id === "call_huge")!.content;
      expect(huge).toMatch(/^Error: tool fixture__big failed: result too large: extension fixture sent a message over the 10485760-byte limit of one MCP message/);
      expect(huge).not.toMatch(/crash|SIGTERM/);
      const pid = toolMessages(2).find((m) => m.tool_call_id === "call_pid")!.content;
      expect(pid).toMatch(/^\d+$/);
    });

    it("reads a slowly sent 20 MB SSE line without PROVIDER_TIMEOUT, and keeps SKEIN_MAX_MODEL_OUTPUT_CHARS of it with a note", async () => {
      const s = await createWith(h.client, work, []);
      // ~40 writes 100 ms apart: bytes keep arriving well within the 1000 ms idle timeout,
      // while the whole line takes several times that long.
      h.model.enqueue({ events: openaiText("y".repeat(20_000_000), { pieces: 1 }), trickle: { bytes: 512 * 1024, delayMs: 100 } });
      const events = await collect(reply(h.client, s.id, "say y, a lot"));
      expect(events.filter((e) => e.event?.$case === "error")).toEqual([]);
      expect(finishReason(events)).toBe(STOP);

      const stored = (await getPage(h.client, s.id)).messages[1]!;
      const text = stored.content[0]!.kind?.$case === "text" ? stored.content[0]!.kind.value.text : "";
      expect(text.startsWith("y".repeat(1_000_000))).toBe(true);
      expect(text.slice(1_000_000)).toMatch(/^\n\n\[skein: the model's reply was 20000000 characters, over the limit of 1000000 \(SKEIN_MAX_MODEL_OUTPUT_CHARS\)/);
      // Live viewers saw the same text the history keeps.
      expect(deltaText(events) === text).toBe(true);
    });
  });

  describe("with caps raised over the gRPC limit (or a session goose wrote)", () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ SKEIN_MAX_TOOL_RESULT_CHARS: "20000000" });
    });
    afterAll(() => h?.close());

    it("a stored 18 MB message never locks the session out: Reply ends with finished, GetSession pages and cuts that one message, WatchSession replays", async () => {
      const s = await createWith(h.client, work, [fixtureExt()]);
      twoHugeToolResults(h);
      const events = await collect(reply(h.client, s.id, "make a lot of output"));
      expect(cases(events).at(-1)).toBe("finished");
      expect(finishReason(events)).toBe(STOP);
      const huge = events.find((e) => e.event?.$case === "message" && toolResponses(e.event.value.message!).length === 2);
      expect(huge?.event?.$case === "message" && huge.event.value.message!.truncated).toBe(true);

      const { messages, pages, messageCount } = await allPages(h.client, s.id);
      expect(messageCount).toBe(4);
      expect(pages).toBeGreaterThan(1);
      expect(messages.map((m) => m.role)).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT, pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
      expect(messages.map((m) => m.truncated)).toEqual([false, false, true, false]);
      const cut = toolResponses(messages[2]!);
      expect(cut.map((r) => r.id)).toEqual(["call_big_1", "call_big_2"]);
      for (const r of cut) {
        // Checked in parts: a failing match would print megabytes.
        const [kept, note] = texts(r).join("").split("\n");
        expect(kept!.length > 1_000_000 && /^x+$/.test(kept!)).toBe(true);
        expect(note).toMatch(/^\[skein: cut to fit one gRPC response: this tool result is \d+ bytes and a response carries at most 4194304; the stored session keeps it whole\]$/);
      }

      const watcher = watch(h.client, s.id, 0);
      const replayed = await readUntil(watcher, isFinished);
      hangUp(watcher);
      expect(replayed.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
      // The session goes on: the model still gets the whole stored history.
      h.model.enqueue({ events: openaiText("still here") });
      expect(finishReason(await collect(reply(h.client, s.id, "and now?")))).toBe(STOP);
    });

    it("pages by message_page_size and checks the page fields", async () => {
      const s = await createWith(h.client, work, []);
      for (const q of ["one", "two", "three"]) expect(finishReason(await collect(reply(h.client, s.id, q)))).toBe(STOP);
      const whole = await getPage(h.client, s.id);
      expect(whole.messages).toHaveLength(6);
      expect(whole.nextMessagePageToken).toBe("");
      const paged = await allPages(h.client, s.id, 4);
      expect(paged.pages).toBe(2);
      expect(paged.messages).toEqual(whole.messages);
      expect((await allPages(h.client, s.id, 1)).messages).toEqual(whole.messages);

      const badToken = await rejection(getPage(h.client, s.id, 0, "not-a-token"));
      expect(badToken.code).toBe(status.INVALID_ARGUMENT);
      expect(badToken.details).toMatch(/^message_page_token: /);
      const tooBig = await rejection(getPage(h.client, s.id, 10_001));
      expect(tooBig.code).toBe(status.INVALID_ARGUMENT);
      expect(tooBig.details).toMatch(/^message_page_size: must be at most 10000/);
    });
  });
});
