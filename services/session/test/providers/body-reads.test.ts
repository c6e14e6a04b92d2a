import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { BodyReads } from "../../src/providers/body-reads.js";

const text = (chunks: Buffer[] | undefined) => chunks?.map(String).join("|");

describe("BodyReads", () => {
  it("hands every chunk that came since the last read at once, in order; a waiting read gets the next one", async () => {
    const body = new PassThrough();
    const reads = new BodyReads(body);
    body.write("a");
    body.write("b");
    await new Promise((r) => setImmediate(r));
    expect(text((await reads.next()) as Buffer[])).toBe("a|b");
    const waiting = reads.next();
    expect(waiting).toBeInstanceOf(Promise);
    body.write("c");
    expect(text(await waiting)).toBe("c");
    body.end();
    await new Promise((r) => setImmediate(r));
    expect(await reads.next()).toBeUndefined();
    reads.close();
  });

  it("pauses the body past 64 unread chunks and resumes it at the next read (backpressure)", async () => {
    const body = new PassThrough();
    const reads = new BodyReads(body);
    for (let i = 0; i < 100; i++) body.write(String(i % 10));
    await new Promise((r) => setImmediate(r));
    expect(body.isPaused()).toBe(true);
    const first = (await reads.next()) as Buffer[];
    expect(first).toHaveLength(64);
    expect(body.isPaused()).toBe(false);
    await new Promise((r) => setImmediate(r));
    const rest = (await reads.next()) as Buffer[];
    expect(first.length + rest.length).toBe(100);
    reads.close();
    body.destroy();
  });

  it("a body that breaks off: the chunks before the break first, then its error; a waiting read gets the error", async () => {
    const body = new PassThrough();
    const reads = new BodyReads(body);
    body.write("x");
    await new Promise((r) => setImmediate(r));
    body.destroy(new Error("connection reset"));
    await new Promise((r) => setImmediate(r));
    expect(text((await reads.next()) as Buffer[])).toBe("x");
    await expect(async () => reads.next()).rejects.toThrow("connection reset");

    const cut = new PassThrough();
    const waitingReads = new BodyReads(cut);
    const waiting = waitingReads.next();
    cut.destroy();
    // Closed without its end: premature close, as the stream's own iterator reports it.
    await expect(waiting).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });
});
