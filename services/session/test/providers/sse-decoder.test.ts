import { describe, expect, it } from "vitest";
import { SseDecoder, type SseMessage } from "../../src/providers/sse-decoder.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` cut at every given offset (byte offsets, so multi-byte characters get split too). */
function decode(text: string, cuts: number[] = []): SseMessage[] {
  const all = bytes(text);
  const d = new SseDecoder();
  const out: SseMessage[] = [];
  let at = 0;
  for (const cut of [...cuts, all.length]) {
    out.push(...d.push(all.subarray(at, cut)));
    at = cut;
  }
  return [...out, ...d.end()];
}

describe("SseDecoder", () => {
  it("decodes events with names, several data lines, comments and every line ending", () => {
    const text = "event: a\ndata: one\ndata:two\n\n: a comment\r\ndata: x\r\n\r\nevent: b\rdata: y\r\rdata\n\n";
    expect(decode(text)).toEqual([
      { event: "a", data: "one\ntwo" },
      { event: null, data: "x" },
      { event: "b", data: "y" },
      { event: null, data: "" },
    ]);
  });

  it("gives the same events however the bytes are cut, CRLF and UTF-8 sequences included", () => {
    const text = 'data: {"t":"héllo ✓ 𝄞"}\r\n\r\nevent: e\r\ndata: z\r\n\r\n';
    const whole = decode(text);
    expect(whole).toEqual([
      { event: null, data: '{"t":"héllo ✓ 𝄞"}' },
      { event: "e", data: "z" },
    ]);
    const n = bytes(text).length;
    for (let i = 1; i < n; i++) expect(decode(text, [i])).toEqual(whole);
    expect(decode(text, Array.from({ length: n - 1 }, (_, i) => i + 1))).toEqual(whole);
  });

  it("drops one byte order mark at the stream's start (cut anywhere), keeps one later, and replaces invalid UTF-8", () => {
    const text = "\uFEFFdata: a\n\ndata: \uFEFFb\n\n";
    const want = [
      { event: null, data: "a" },
      { event: null, data: "\uFEFFb" },
    ];
    expect(decode(text)).toEqual(want);
    for (const cut of [1, 2, 3]) expect(decode(text, [cut])).toEqual(want);
    const d = new SseDecoder();
    expect([...d.push(new Uint8Array([...bytes("data: x"), 0xff, ...bytes("\n\n")])), ...d.end()]).toEqual([{ event: null, data: "x\uFFFD" }]);
  });

  it("drops an event the stream ends before its blank line", () => {
    expect(decode("data: complete\n\ndata: cut off")).toEqual([{ event: null, data: "complete" }]);
  });

  it("assembles one line sent in many small chunks", () => {
    const payload = "x".repeat(200_000);
    const text = `data: ${payload}\n\n`;
    const cuts = Array.from({ length: 199 }, (_, i) => (i + 1) * 1_000);
    expect(decode(text, cuts)).toEqual([{ event: null, data: payload }]);
  });
});
