import { describe, expect, it } from "vitest";
import { capToolCall, capToolContent, capToolError } from "../../src/agent/output-limits.js";

describe("capToolContent", () => {
  it("keeps a result within the limit as it is", () => {
    const content = [{ type: "text", text: "a".repeat(600) }, { type: "text", text: "b".repeat(400) }];
    expect(capToolContent(content, 1_000)).toEqual(content);
  });

  it("keeps items in order while they fit, cuts the text that does not, drops the rest and says so", () => {
    const content = [
      { type: "text", text: "a".repeat(600) },
      { type: "resource", resource: { uri: "file:///x", text: "b".repeat(900) } },
      { type: "image", data: "c".repeat(50), mimeType: "image/png" },
    ];
    const out = capToolContent(content, 1_000);
    expect(out.slice(0, 2)).toEqual([content[0], { type: "resource", resource: { uri: "file:///x", text: "b".repeat(400) } }]);
    expect(out).toHaveLength(3);
    expect(out[2]).toEqual({ type: "text", text: expect.stringMatching(/larger \(1550 characters\) than the limit of 1000 characters \(SKEIN_MAX_TOOL_RESULT_CHARS\)/) });
  });

  it("leaves out a binary item that does not fit instead of cutting its data", () => {
    const out = capToolContent([{ type: "image", data: "d".repeat(5_000), mimeType: "image/png" }], 1_000);
    expect(out).toEqual([{ type: "text", text: expect.stringMatching(/larger \(5000 characters\)/) }]);
  });
});

describe("capToolError and capToolCall", () => {
  it("cuts a long error text with the note", () => {
    expect(capToolError("short", 1_000)).toBe("short");
    const cut = capToolError("e".repeat(3_000), 1_000);
    expect(cut.startsWith(`${"e".repeat(1_000)}\n[skein: `)).toBe(true);
  });

  it("turns a tool call with too large arguments into an error the model reads", () => {
    const small = { status: "success" as const, value: { name: "x__y", arguments: { a: 1 } } };
    expect(capToolCall(small, 1_000)).toBe(small);
    const big = capToolCall({ status: "success", value: { name: "x__y", arguments: { a: "z".repeat(2_000) } } }, 1_000);
    expect(big).toEqual({ status: "error", error: expect.stringMatching(/^the arguments of tool x__y were 2008 characters of JSON, over the limit of 1000 .*not called$/) });
  });
});
