import { describe, expect, it } from "vitest";
import { chunkBatches, guardedStream } from "../../src/providers/guarded-stream.js";
import { ProviderAbortedError, ProviderError, type ModelChunk } from "../../src/providers/provider.js";
import type { SseMessage } from "../../src/providers/sse-decoder.js";

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
      // Like fetch: a body whose request was aborted errors with the abort reason.
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
});

describe("chunkBatches", () => {
  async function* reads(...batches: string[][]): AsyncGenerator<SseMessage[]> {
    for (const b of batches) yield b.map((data) => ({ event: null, data }));
  }
  const text = (sse: SseMessage, out: ModelChunk[]) => {
    if (sse.data === "bad") throw new ProviderError("PROVIDER_MALFORMED_STREAM", "bad event");
    if (sse.data !== "skip") out.push({ type: "text", text: sse.data });
  };

  it("hands on the chunks of one read as one batch, skipping reads that made none", async () => {
    const out: string[][] = [];
    for await (const b of chunkBatches(reads(["a", "b", "c"], ["skip"], ["d"]), text)) out.push(b.map((c) => (c as { text: string }).text));
    expect(out).toEqual([["a", "b", "c"], ["d"]]);
  });

  it("a failing event still lets the chunks before it in the same read out first", async () => {
    const out: string[] = [];
    let error: unknown;
    try {
      for await (const b of chunkBatches(reads(["a"], ["b", "bad", "c"]), text)) out.push(...b.map((c) => (c as { text: string }).text));
    } catch (err) {
      error = err;
    }
    expect(out).toEqual(["a", "b"]);
    expect((error as ProviderError).code).toBe("PROVIDER_MALFORMED_STREAM");
  });
});
