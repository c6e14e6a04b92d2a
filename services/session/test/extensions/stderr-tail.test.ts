import { describe, expect, it } from "vitest";
import { StderrTail } from "../../src/extensions/stderr-tail.js";

describe("StderrTail", () => {
  it("keeps at most maxBytes, newest last", () => {
    const tail = new StderrTail(32);
    for (let i = 0; i < 100; i++) tail.push(Buffer.from(`line ${i}\n`));
    expect(tail.lastLines(3)).toEqual(["line 97", "line 98", "line 99"]);
    expect(Buffer.byteLength(tail.lastLines(100).join("\n"))).toBeLessThanOrEqual(32);
    tail.push(Buffer.alloc(1000, "a"));
    expect(tail.lastLines()).toEqual(["a".repeat(32)]);
  });
});
