import { describe, expect, it } from "vitest";
import { runAgent } from "../../src/agent-loop/loop.js";
import type { ToolSource } from "../../src/extensions/tool-source.js";
import { message, textItem, type GooseMessage } from "@skein/goose-sessions/goose-format";
import type { ModelChunk, Provider } from "../../src/providers/provider.js";

/** A provider whose whole answer arrives in one read, as from a fast local model server. */
function oneReadProvider(chunks: ModelChunk[]): Provider {
  return {
    name: "test",
    model: "test",
    complete: () => Promise.reject(new Error("not used")),
    async *stream() {
      yield chunks;
    },
  };
}

const noTools: ToolSource = { list: () => [], call: () => Promise.reject(new Error("no tools")), close: async () => undefined };

describe("runAgent", () => {
  it("lets the streamed text leave (a loop turn) before the model's message is stored", async () => {
    const order: string[] = [];
    const stored: GooseMessage[] = [];
    const reason = await runAgent({
      provider: oneReadProvider([
        { type: "text", text: "hel" },
        { type: "text", text: "lo" },
        { type: "done", stopReason: "stop" },
      ]),
      tools: noTools,
      system: "",
      history: [message("user", [textItem("hi")])],
      maxTurns: 5,
      limits: { maxToolResultChars: 1000, maxModelOutputChars: 1000 },
      signal: new AbortController().signal,
      sink: {
        message: async (m) => {
          order.push("store");
          stored.push(m);
        },
        textDelta: (t) => {
          order.push(`delta ${t}`);
          // What Node does with a call's written bytes: sends them in the loop's check phase.
          setImmediate(() => order.push(`sent ${t}`));
        },
        usage: () => undefined,
        error: () => undefined,
      },
    });
    expect(reason).toBe("stop");
    expect(order).toEqual(["delta hel", "delta lo", "sent hel", "sent lo", "store"]);
    expect(stored.map((m) => m.content)).toEqual([[textItem("hello")]]);
  });
});
