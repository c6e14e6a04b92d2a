import { session as pb } from "@skein/proto";
import { describe, expect, it } from "vitest";
import { messagePageRequest, messagePageToken } from "../../src/grpc/message-pages.js";
import type { GooseMessage } from "@skein/goose-sessions/goose-format";
import { fitEvent, fitMessage, messagePage, textOnlyBound } from "../../src/grpc/wire-limits.js";

const bytes = (m: pb.Message) => pb.Message.encode(m).finish().length;
const text = (t: string): pb.Content => ({ kind: { $case: "text", value: { text: t } } });
const msg = (content: pb.Content[]): pb.Message => pb.Message.fromPartial({ id: "m", role: pb.Role.ROLE_ASSISTANT, content });
const goose = (t: string): GooseMessage => ({ id: null, role: "user", created: 1_700_000_000, content: [{ type: "text", text: t }] });

describe("fitMessage", () => {
  it("returns a message that fits unchanged", () => {
    const m = msg([text("hello")]);
    expect(fitMessage(m, 1_000)).toBe(m);
  });

  it("cuts the large items, keeps the small ones whole, marks the copy truncated and stays within the limit", () => {
    const m = msg([text("small"), text("é".repeat(50_000)), { kind: { $case: "image", value: { data: "i".repeat(30_000), mimeType: "image/png" } } }]);
    const fitted = fitMessage(m, 20_000);
    expect(bytes(fitted)).toBeLessThanOrEqual(20_000);
    expect(fitted.truncated).toBe(true);
    expect(fitted.content[0]).toEqual(text("small"));
    const cut = fitted.content[1]!.kind;
    expect(cut?.$case === "text" && /^é+\n\[skein: cut to fit one gRPC response: this text is \d+ bytes/.test(cut.value.text)).toBe(true);
    expect(fitted.content[2]!.kind).toEqual({ $case: "text", value: { text: expect.stringMatching(/this image content is \d+ bytes and a response carries at most 20000/) } });
  });

  it("falls back to one marker when there are too many items for one each", () => {
    const m = msg(Array.from({ length: 200 }, () => text("x".repeat(100))));
    const fitted = fitMessage(m, 2_000);
    expect(bytes(fitted)).toBeLessThanOrEqual(2_000);
    expect(fitted.content).toHaveLength(1);
  });
});

describe("textOnlyBound (fitMessage's check without encoding)", () => {
  it("is never below a text-only message's encoded size, whatever its characters, lengths and timestamp", () => {
    const created = new Date(253_402_300_799_999); // the largest Timestamp seconds, with milliseconds
    for (const piece of ["a", "é", "€", "😀", "\u0000"]) {
      for (const n of [0, 1, 127, 128, 16_383, 16_384, 300_000]) {
        for (const items of [1, 3]) {
          const m = pb.Message.fromPartial({ id: piece.repeat(40), role: pb.Role.ROLE_ASSISTANT, created, truncated: true, content: Array.from({ length: items }, () => text(piece.repeat(n))) });
          expect(textOnlyBound(m)).toBeGreaterThanOrEqual(bytes(m));
        }
      }
    }
  });

  it("says nothing (Infinity) for a message with other content: fitMessage encodes it to know", () => {
    expect(textOnlyBound(msg([text("a"), { kind: { $case: "image", value: { data: "i", mimeType: "image/png" } } }]))).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("fitEvent", () => {
  it("fits a message event under the limit", () => {
    const e: pb.ReplyResponse = { seq: 1, requestId: "r", sessionId: "s", event: { $case: "message", value: { message: msg([text("x".repeat(200_000))]) } } };
    expect(pb.ReplyResponse.encode(fitEvent(e, 100_000)).finish().length).toBeLessThanOrEqual(100_000);
  });
});

describe("messagePage", () => {
  const messages = Array.from({ length: 10 }, (_, i) => goose(`${i}:${"m".repeat(1_000)}`));

  it("ends a page by count or by bytes, and always carries at least one message", () => {
    expect(messagePage(messages, 0, 0, 4 * 1024 * 1024, 0)).toMatchObject({ next: undefined });
    expect(messagePage(messages, 0, 0, 4 * 1024 * 1024, 0).messages).toHaveLength(10);
    const byCount = messagePage(messages, 2, 3, 4 * 1024 * 1024, 0);
    expect(byCount.messages).toHaveLength(3);
    expect(byCount.next).toBe(5);
    // 8 KiB: after the envelope, room for a few 1 KB messages only.
    const byBytes = messagePage(messages, 0, 0, 8 * 1024, 0);
    expect(byBytes.messages.length).toBeGreaterThan(0);
    expect(byBytes.messages.length).toBeLessThan(10);
    expect(byBytes.next).toBe(byBytes.messages.length);
    const huge = messagePage([goose("h".repeat(100_000)), ...messages], 0, 0, 40 * 1024, 0);
    expect(huge.messages).toHaveLength(1);
    expect(huge.messages[0]!.truncated).toBe(true);
    expect(huge.next).toBe(1);
  });
});

describe("message page tokens", () => {
  it("round-trip and are checked", () => {
    expect(messagePageRequest(0, messagePageToken(7), 10)).toEqual({ start: 7, size: 0 });
    expect(messagePageRequest(5, "", 0)).toEqual({ start: 0, size: 5 });
    expect(() => messagePageRequest(0, "garbage", 10)).toThrow(/^message_page_token: is not a token/);
    expect(() => messagePageRequest(0, messagePageToken(11), 10)).toThrow(/^message_page_token: points past the session's 10 messages/);
    expect(() => messagePageRequest(10_001, "", 10)).toThrow(/^message_page_size: must be at most 10000/);
  });
});
