import { describe, expect, it } from "vitest";
import { message, textItem, toolRequestItem, toolResponseItem, type GooseMessage } from "@skein/goose-sessions/goose-format";
import { toAnthropicMessages } from "../../src/providers/anthropic.js";
import { toOpenAIMessages } from "../../src/providers/openai.js";
import { ToolCallAssembler } from "../../src/providers/tool-call-assembler.js";

const call = (id: string, name: string, args: Record<string, unknown>) => toolRequestItem(id, { status: "success", value: { name, arguments: args } });
const ok = (id: string, text: string) => toolResponseItem(id, { status: "success", value: [{ type: "text", text }] });

// A turn with a tool round trip, a tool call nobody answered (a crash) and a user message.
const history: GooseMessage[] = [
  message("user", [textItem("what is 2+2?")]),
  message("assistant", [textItem("Let me add."), call("c1", "calc__add", { a: 2, b: 2 })]),
  message("user", [ok("c1", "4")]),
  message("assistant", [call("lost", "calc__add", { a: 1 })]),
  message("user", [textItem("thanks")]),
];

describe("provider message mappers", () => {
  it("OpenAI: system first, answered tool calls with their `tool` result, unanswered ones dropped", () => {
    expect(toOpenAIMessages("be brief", history)).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "what is 2+2?" },
      {
        role: "assistant",
        content: "Let me add.",
        tool_calls: [{ id: "c1", type: "function", function: { name: "calc__add", arguments: '{"a":2,"b":2}' } }],
      },
      { role: "tool", tool_call_id: "c1", content: "4" },
      { role: "user", content: "thanks" },
    ]);
  });

  it("Anthropic: tool_use/tool_result blocks, same-role turns merged so roles alternate", () => {
    expect(toAnthropicMessages(history)).toEqual([
      { role: "user", content: [{ type: "text", text: "what is 2+2?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me add." },
          { type: "tool_use", id: "c1", name: "calc__add", input: { a: 2, b: 2 } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "c1", content: "4", is_error: false },
          { type: "text", text: "thanks" },
        ],
      },
    ]);
  });
});

describe("ToolCallAssembler", () => {
  it("joins id, name and argument pieces per index, in index order", () => {
    const a = new ToolCallAssembler();
    a.add(1, { id: "b", name: "x__two", args: "" });
    a.add(0, { id: "a", name: "x__", args: '{"n":' });
    a.add(0, { name: "one", args: "1}" });
    expect(a.finish()).toEqual([
      { id: "a", call: { status: "success", value: { name: "x__one", arguments: { n: 1 } } } },
      { id: "b", call: { status: "success", value: { name: "x__two", arguments: {} } } },
    ]);
  });

  it("turns broken arguments into a toolCall error (as goose does) and gives a missing id one", () => {
    const a = new ToolCallAssembler();
    a.add(0, { name: "x__y", args: "{not json" });
    a.add(1, { name: "x__z", args: "[1]" });
    a.add(2, { args: "{}" });
    const [broken, notObject, nameless] = a.finish();
    expect(broken!.id).toMatch(/^call_[0-9a-f]{32}$/);
    expect(broken!.call).toMatchObject({ status: "error", error: expect.stringMatching(/could not parse the arguments of tool x__y as JSON/) });
    expect(notObject!.call).toEqual({ status: "error", error: "the arguments of tool x__z are not a JSON object" });
    expect(nameless!.call).toEqual({ status: "error", error: "the model called a tool without a name" });
  });
});
