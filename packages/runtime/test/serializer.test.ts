import { session as pb } from "@skein/proto";
import { describe, expect, it } from "vitest";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { reusedWriterSerializer, stateOf, withReusedWriters } from "../src/serializer.js";

const head = { seq: 7, requestId: "req-1", sessionId: "20261128_1" };

/** One ReplyResponse of every event kind, with non-ASCII text and large numbers where they matter. */
const everyKind: pb.ReplyResponse[] = [
  { ...head, event: { $case: "textDelta", value: { text: "héllo → 世界 🎉" } } },
  { ...head, seq: 2 ** 40 + 3, event: { $case: "textDelta", value: { text: "" } } },
  {
    ...head,
    event: {
      $case: "message",
      value: {
        message: {
          id: "m1",
          role: pb.Role.ROLE_ASSISTANT,
          created: new Date(1_764_000_000_000),
          truncated: false,
          content: [
            { kind: { $case: "text", value: { text: "answer" } } },
            { kind: { $case: "toolRequest", value: { id: "t1", name: "dev__shell", arguments: { cmd: "ls", n: 2 }, error: "" } } },
            { kind: { $case: "toolResponse", value: { id: "t1", content: [{ type: "text", text: "a\nb" }], error: "" } } },
          ],
        },
      },
    },
  },
  { ...head, event: { $case: "usage", value: { inputTokens: 12, outputTokens: 2 ** 33, totalTokens: 2 ** 33 + 12 } } },
  { ...head, event: { $case: "finished", value: { reason: pb.FinishReason.FINISH_REASON_MAX_TURNS } } },
  { ...head, event: { $case: "error", value: { code: "PROVIDER_TIMEOUT", message: "the provider sent nothing for 1000 ms" } } },
];

const generated = pb.SessionServiceService.reply.responseSerialize;

describe("reusedWriterSerializer", () => {
  it("finds the installed @bufbuild/protobuf writer's bytes where its fast path reads them (else it falls back to finish(): correct, slower)", () => {
    const w = new BinaryWriter().uint32(300).string("ab");
    const state = stateOf(w);
    expect(state).toBeDefined();
    expect(Buffer.from(state!.buffer.subarray(0, state!.pos))).toEqual(Buffer.from(w.finish()));
  });

  it("writes the same bytes as the generated serializer for every event kind, and they decode to the message", () => {
    const serialize = reusedWriterSerializer(pb.ReplyResponse);
    for (const m of everyKind) {
      const bytes = serialize(m);
      expect(Buffer.compare(bytes, generated(m))).toBe(0);
      expect(pb.ReplyResponse.decode(bytes)).toEqual(pb.ReplyResponse.decode(generated(m)));
    }
  });

  it("keeps each result intact while the writer is reused (a long message then a short one)", () => {
    const serialize = reusedWriterSerializer(pb.ReplyResponse);
    const long = serialize({ ...head, event: { $case: "textDelta", value: { text: "x".repeat(300) } } });
    const longCopy = Buffer.from(long);
    const short = serialize({ ...head, event: { $case: "textDelta", value: { text: "y" } } });
    // grpc-js copies each result at once; a result must still not change under a later encode.
    expect(Buffer.compare(long, longCopy)).toBe(0);
    expect(pb.ReplyResponse.decode(short).event).toEqual({ $case: "textDelta", value: { text: "y" } });
  });

  it("encodes a message larger than the kept writer size, and the next one still correctly", () => {
    const serialize = reusedWriterSerializer(pb.ReplyResponse);
    const big = { ...head, event: { $case: "textDelta" as const, value: { text: "z".repeat(200_000) } } };
    expect(pb.ReplyResponse.decode(serialize(big))).toEqual(big);
    expect(pb.ReplyResponse.decode(serialize(everyKind[0]!))).toEqual(everyKind[0]);
  });

  it("starts clean after an encode that throws midway", () => {
    const serialize = reusedWriterSerializer(pb.ReplyResponse);
    // A fractional int field makes the writer throw after the head's bytes are written.
    const bad = { ...head, seq: 1, requestId: 5 as unknown as string, event: { $case: "usage" as const, value: { inputTokens: 1.5, outputTokens: 0, totalTokens: 0 } } };
    expect(() => serialize(bad)).toThrow();
    expect(Buffer.compare(serialize(everyKind[0]!), generated(everyKind[0]!))).toBe(0);
  });
});

describe("withReusedWriters", () => {
  it("replaces only the named methods' response serializers", () => {
    const def = withReusedWriters(pb.SessionServiceService, { reply: pb.ReplyResponse, watchSession: pb.WatchSessionResponse });
    expect(def.reply.responseSerialize).not.toBe(pb.SessionServiceService.reply.responseSerialize);
    expect(def.watchSession.responseSerialize).not.toBe(pb.SessionServiceService.watchSession.responseSerialize);
    expect(def.getSession).toBe(pb.SessionServiceService.getSession);
    expect(def.reply.path).toBe(pb.SessionServiceService.reply.path);
    for (const m of everyKind) expect(Buffer.compare(def.watchSession.responseSerialize(m), pb.SessionServiceService.watchSession.responseSerialize(m))).toBe(0);
  });

  it("refuses a method the service does not have", () => {
    expect(() => withReusedWriters(pb.SessionServiceService, { nope: pb.ReplyResponse } as never)).toThrow(/no method nope/);
  });
});
