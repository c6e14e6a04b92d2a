import { getEventListeners } from "node:events";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { guardedCall, type GuardedStreamOptions } from "../../src/providers/guarded-stream.js";
import { guardedChunks } from "../../src/providers/guarded-chunks.js";
import { ProviderAbortedError, ProviderError, type ModelChunk } from "../../src/providers/provider.js";
import type { SseMessage } from "../../src/providers/sse-decoder.js";

/** The SSE events of a response, a wake-up's worth at a time: guardedChunks without conversion. */
const guardedStream = (opts: GuardedStreamOptions): AsyncIterableIterator<SseMessage[]> => guardedChunks<SseMessage>(opts, (sse, out) => out.push(sse), () => []);

const enc = new TextEncoder();

/** A Response whose body sends `chunks`, then (unless `end` is false) ends; `gapMs` between chunks. */
function response(chunks: string[], opts: { gapMs?: number; end?: boolean; signal?: AbortSignal } = {}): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (i < chunks.length) {
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        c.enqueue(enc.encode(chunks[i++]!));
      } else if (opts.end !== false) c.close();
      // Like fetch: a body whose request was aborted errors with the abort reason (also when it was before this read).
      else if (opts.signal?.aborted) c.error(opts.signal.reason);
      else await new Promise<void>((r) => opts.signal?.addEventListener("abort", () => (c.error(opts.signal!.reason), r()), { once: true }));
    },
  });
  return new Response(body);
}

const classify = (err: unknown, opened: boolean) => new ProviderError(opened ? "PROVIDER_STREAM_CUT" : "PROVIDER_CONNECTION_ERROR", String((err as Error).message));

async function read(gen: AsyncIterable<SseMessage[]>): Promise<{ data: string[]; error?: unknown }> {
  const data: string[] = [];
  try {
    for await (const read of gen) data.push(...read.map((m) => m.data));
  } catch (error) {
    return { data, error };
  }
  return { data };
}

describe("guardedStream", () => {
  it("yields every SSE event of a body, split anywhere", async () => {
    const r = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 1_000, classify, open: async () => response(["data: {\"a\"", ":1}\n\ndata: two\n", "\n"]) }));
    expect(r).toEqual({ data: ['{"a":1}', "two"] });
  });

  it("a provider silent past the idle timeout is PROVIDER_TIMEOUT, before the first byte and mid-stream", async () => {
    const before = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 50, classify, open: (s) => new Promise((_, reject) => s.addEventListener("abort", () => reject(new Error("aborted")))) }));
    expect(before.error).toBeInstanceOf(ProviderError);
    expect((before.error as ProviderError).code).toBe("PROVIDER_TIMEOUT");
    const mid = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 50, classify, open: async (s) => response(["data: 1\n\n"], { end: false, signal: s }) }));
    expect(mid.data).toEqual(["1"]);
    expect((mid.error as ProviderError).code).toBe("PROVIDER_TIMEOUT");
  });

  it("a slow but steady body is alive: the watchdog is re-armed by bytes", async () => {
    const r = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 80, classify, open: async () => response(["da", "ta", ": ", "x\n", "\n"], { gapMs: 30 }) }));
    expect(r).toEqual({ data: ["x"] });
  });

  it("the run's own stop is ProviderAbortedError, not a provider failure", async () => {
    const stop = new AbortController();
    const gen = guardedStream({ signal: stop.signal, idleTimeoutMs: 1_000, classify, open: async (s) => response(["data: 1\n\n"], { end: false, signal: s }) });
    const it = gen[Symbol.asyncIterator]();
    expect((await it.next()).value?.map((m: SseMessage) => m.data)).toEqual(["1"]);
    stop.abort();
    await expect(it.next()).rejects.toBeInstanceOf(ProviderAbortedError);
  });

  it("a failure to connect or a cut body goes through classify, with whether the stream had opened", async () => {
    const refused = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 1_000, classify, open: async () => Promise.reject(new Error("ECONNREFUSED")) }));
    expect((refused.error as ProviderError).code).toBe("PROVIDER_CONNECTION_ERROR");
    const body = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new Error("socket hang up")) });
    const cut = await read(guardedStream({ signal: new AbortController().signal, idleTimeoutMs: 1_000, classify, open: async () => new Response(body) }));
    expect((cut.error as ProviderError).code).toBe("PROVIDER_STREAM_CUT");
  });

  it("however a request ends, it leaves no listener on the run's signal; one that simply ends aborts nothing (no abort, no DOMException per request)", async () => {
    const run = new AbortController();
    const given: AbortSignal[] = [];
    const opened = (s: AbortSignal, r: Response) => (given.push(s), r);
    for (let i = 0; i < 3; i++) await read(guardedStream({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: async (s) => opened(s, response(["data: x\n\n"])) }));
    expect(await guardedCall({ signal: run.signal, timeoutMs: 1_000, classify, call: async (s) => (given.push(s), "answer") })).toBe("answer");
    const failed = await read(guardedStream({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: async (s) => (given.push(s), Promise.reject(new Error("refused"))) }));
    expect((failed.error as ProviderError).code).toBe("PROVIDER_CONNECTION_ERROR");
    expect(getEventListeners(run.signal, "abort")).toHaveLength(0);
    expect(given.map((s) => s.aborted)).toEqual([false, false, false, false, false]);
    // The run's stop still reaches the request, with its reason.
    const stopped = guardedStream({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: async (s) => opened(s, response(["data: 1\n\n"], { end: false, signal: s })) })[Symbol.asyncIterator]();
    await stopped.next();
    const reason = new Error("stop");
    run.abort(reason);
    await expect(stopped.next()).rejects.toBeInstanceOf(ProviderAbortedError);
    expect(given.at(-1)!.reason).toBe(reason);
    expect(getEventListeners(run.signal, "abort")).toHaveLength(0);
  });
});

describe("guardedChunks", () => {
  const text = (sse: SseMessage, out: ModelChunk[]) => {
    if (sse.data === "bad") throw new ProviderError("PROVIDER_MALFORMED_STREAM", "bad event");
    if (sse.data !== "skip") out.push({ type: "text", text: sse.data });
  };
  const events = (...data: string[]) => data.map((d) => `data: ${d}\n\n`).join("");
  const chunks = (reads: string[], last: () => ModelChunk[] = () => []) =>
    guardedChunks({ signal: new AbortController().signal, idleTimeoutMs: 1_000, classify, open: async () => response(reads) }, text, last);
  const texts = (b: ModelChunk[]) => b.map((c) => (c as { text: string }).text);

  it("hands on the chunks of one read as one batch, skipping reads that made none, then the last batch (iterated or pushed)", async () => {
    const reads = () => chunks([events("a", "b", "c"), events("skip"), events("d")], () => [{ type: "text", text: "end" }]);
    const out: string[][] = [];
    for await (const b of reads()) out.push(texts(b));
    expect(out).toEqual([["a", "b", "c"], ["d"], ["end"]]);
    const pushed: string[][] = [];
    await reads().forEachBatch((b) => pushed.push(texts(b)));
    expect(pushed).toEqual(out);
  });

  it("a failing event still lets the chunks before it in the same read out first, its error unclassified", async () => {
    const out: string[] = [];
    let error: unknown;
    try {
      for await (const b of chunks([events("a"), events("b", "bad", "c")])) out.push(...texts(b));
    } catch (err) {
      error = err;
    }
    expect(out).toEqual(["a", "b"]);
    expect((error as ProviderError).code).toBe("PROVIDER_MALFORMED_STREAM");
    expect((error as ProviderError).message).toBe("bad event");
  });

  it("the last batch's failure (a stream cut before its finish) comes out as it is", async () => {
    const cut = new ProviderError("PROVIDER_STREAM_CUT", "no finish");
    const out: string[] = [];
    await expect(
      (async () => {
        for await (const b of chunks([events("a")], () => {
          throw cut;
        }))
          out.push(...texts(b));
      })(),
    ).rejects.toBe(cut);
    expect(out).toEqual(["a"]);
  });

  describe("a Node body (nodeFetch's, DirectFirstAttempt's)", () => {
    const tick = () => new Promise((r) => setImmediate(r));
    const nodeChunks = (body: PassThrough, last: () => ModelChunk[] = () => []) =>
      guardedChunks({ signal: new AbortController().signal, idleTimeoutMs: 1_000, classify, open: async () => ({ nodeBody: body }) }, text, last);

    it("converts each read in its data event: what came since the last take is one batch, a waiting read gets the next one", async () => {
      const body = new PassThrough();
      const it = nodeChunks(body, () => [{ type: "text", text: "end" }]);
      const first = it.next();
      body.write(events("a"));
      expect(texts((await first).value as ModelChunk[])).toEqual(["a"]);
      body.write(events("b"));
      body.write(events("skip"));
      body.write(events("c"));
      await tick();
      expect(texts((await it.next()).value as ModelChunk[])).toEqual(["b", "c"]);
      body.end();
      expect(texts((await it.next()).value as ModelChunk[])).toEqual(["end"]);
      expect(await it.next()).toEqual({ done: true, value: undefined });
    });

    it("pauses the body past 64 reads not taken and resumes it once they are (backpressure)", async () => {
      const body = new PassThrough();
      const it = nodeChunks(body);
      const first = it.next();
      await tick();
      for (let i = 0; i < 100; i++) body.write(events(String(i)));
      await tick();
      expect(body.isPaused()).toBe(true);
      const taken = texts((await first).value as ModelChunk[]).concat(texts((await it.next()).value as ModelChunk[]));
      expect(body.isPaused()).toBe(false);
      await tick();
      const rest: string[] = [];
      body.end();
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(...texts(r.value));
      expect([...taken, ...rest]).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    });

    it("a body that breaks off: the items before the break first, then the classified error; the body is let go", async () => {
      const body = new PassThrough();
      const it = nodeChunks(body);
      const first = it.next();
      body.write(events("x"));
      await tick();
      body.destroy(new Error("connection reset"));
      await tick();
      expect(texts((await first).value as ModelChunk[])).toEqual(["x"]);
      const err = await it.next().then(() => undefined, (e: unknown) => e);
      expect((err as ProviderError).code).toBe("PROVIDER_STREAM_CUT");
      expect((err as ProviderError).message).toContain("connection reset");
      expect(await it.next()).toEqual({ done: true, value: undefined });
      // Closed without its end: a premature close is a cut too.
      const cut = new PassThrough();
      const waiting = nodeChunks(cut).next();
      await tick();
      cut.destroy();
      expect(((await waiting.then(() => undefined, (e: unknown) => e)) as ProviderError).code).toBe("PROVIDER_STREAM_CUT");
    });

    it("a failing event ends the stream after the items before it, and the unread body is destroyed (its connection freed)", async () => {
      const body = new PassThrough();
      const it = nodeChunks(body);
      const first = it.next();
      body.write(events("a", "bad", "b"));
      expect(texts((await first).value as ModelChunk[])).toEqual(["a"]);
      await expect(it.next()).rejects.toMatchObject({ code: "PROVIDER_MALFORMED_STREAM", message: "bad event" });
      expect(body.destroyed).toBe(true);
    });

    it("a reader that leaves early (return) frees the body and the run's signal, also while the request is still being sent", async () => {
      const run = new AbortController();
      const body = new PassThrough();
      const it = guardedChunks({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: async () => ({ nodeBody: body }) }, text, () => []);
      const first = it.next();
      body.write(events("a"));
      await first;
      expect(await it.return!()).toEqual({ done: true, value: undefined });
      expect(body.destroyed).toBe(true);
      expect(getEventListeners(run.signal, "abort")).toHaveLength(0);

      let sent: AbortSignal | undefined;
      let answer!: (b: { nodeBody: PassThrough }) => void;
      const late = new PassThrough();
      const opening = guardedChunks({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: (s) => ((sent = s), new Promise((r) => (answer = r))) }, text, () => []);
      const pending = opening.next();
      await opening.return!();
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(sent!.aborted).toBe(true);
      answer({ nodeBody: late });
      await tick();
      expect(late.destroyed).toBe(true);
      expect(getEventListeners(run.signal, "abort")).toHaveLength(0);
    });

    it("forEachBatch hands each read's items from inside the read's data event, resolves at the end, rejects as next() would throw", async () => {
      const body = new PassThrough();
      const stream = nodeChunks(body, () => [{ type: "text", text: "end" }]);
      const got: string[][] = [];
      const done = stream.forEachBatch((b) => got.push(texts(b)));
      await tick();
      body.emit("data", Buffer.from(events("a", "b")));
      expect(got).toEqual([["a", "b"]]);
      body.emit("data", Buffer.from(events("skip")));
      expect(got).toEqual([["a", "b"]]);
      body.end();
      await done;
      expect(got).toEqual([["a", "b"], ["end"]]);

      const cut = new PassThrough();
      const failing = nodeChunks(cut).forEachBatch(() => undefined);
      await tick();
      cut.destroy(new Error("connection reset"));
      await expect(failing).rejects.toMatchObject({ code: "PROVIDER_STREAM_CUT" });
    });

    it("a throw from forEachBatch's reader ends the stream: the body is destroyed (its connection freed) and the promise rejects with that error", async () => {
      const run = new AbortController();
      const body = new PassThrough();
      const stream = guardedChunks({ signal: run.signal, idleTimeoutMs: 1_000, classify, open: async () => ({ nodeBody: body }) }, text, () => []);
      const refused = new Error("the reader broke");
      const done = stream.forEachBatch(() => {
        throw refused;
      });
      await tick();
      body.emit("data", Buffer.from(events("a")));
      await expect(done).rejects.toBe(refused);
      expect(body.destroyed).toBe(true);
      expect(getEventListeners(run.signal, "abort")).toHaveLength(0);
    });

    it("silence past the idle timeout mid-stream is PROVIDER_TIMEOUT", async () => {
      const body = new PassThrough();
      const it = guardedChunks({ signal: new AbortController().signal, idleTimeoutMs: 50, classify, open: async (s) => (s.addEventListener("abort", () => body.destroy(s.reason as Error)), { nodeBody: body }) }, text, () => []);
      const first = it.next();
      body.write(events("a"));
      expect(texts((await first).value as ModelChunk[])).toEqual(["a"]);
      await expect(it.next()).rejects.toMatchObject({ code: "PROVIDER_TIMEOUT" });
    });
  });
});
