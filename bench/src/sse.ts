import type { Table } from "./table.js";

/** skein's decoder, loaded from the built service (bench does not compile it). */
interface DecoderModule {
  SseDecoder: new () => { push(chunk: Uint8Array): { data: string }[]; end(): { data: string }[] };
}
/** The OpenAI SDK's stream parser, which skein used before (loaded by path: bench does not depend on the SDK). */
interface SdkStreamModule {
  Stream: { fromSSEResponse(res: Response, controller: AbortController): AsyncIterable<unknown> };
}

const CHUNK = 64 * 1024;
const SKEIN_SIZES_MB = [5, 10, 20];
// The SDK's parser is quadratic in one line's length: beyond 10 MB it takes many seconds.
const SDK_SIZES_MB = [5, 10];

/** One OpenAI chunk whose text delta is `mb` megabytes: a single SSE line. */
function body(mb: number): Uint8Array {
  const chunk = { id: "c", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta: { content: "x".repeat(mb * 1_000_000) }, finish_reason: null }] };
  return new TextEncoder().encode(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`);
}

/** The body as a network would deliver it: 64 KiB at a time. */
function chunks(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < b.length; at += CHUNK) out.push(b.subarray(at, at + CHUNK));
  return out;
}

async function timeSkein(mod: DecoderModule, parts: Uint8Array[]): Promise<number> {
  const t0 = performance.now();
  const d = new mod.SseDecoder();
  let events = 0;
  for (const p of parts) for (const e of d.push(p)) if (e.data !== "[DONE]") (JSON.parse(e.data), events++);
  events += d.end().length;
  if (events !== 1) throw new Error(`skein decoder gave ${events} events`);
  return performance.now() - t0;
}

async function timeSdk(mod: SdkStreamModule, parts: Uint8Array[]): Promise<number> {
  const t0 = performance.now();
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(p);
      c.close();
    },
  });
  let events = 0;
  for await (const _ of mod.Stream.fromSSEResponse(new Response(stream), new AbortController())) events++;
  if (events !== 1) throw new Error(`SDK parser gave ${events} events`);
  return performance.now() - t0;
}

/** Time to parse one huge SSE line (received in 64 KiB chunks) into its JSON chunk. */
export async function run(): Promise<Table[]> {
  const skein = (await import(new URL("../../services/session/dist/providers/sse-decoder.js", import.meta.url).href)) as DecoderModule;
  const sdk = (await import(new URL("../../node_modules/openai/core/streaming.mjs", import.meta.url).href)) as SdkStreamModule;
  const rows: (string | number)[][] = [];
  for (const mb of SKEIN_SIZES_MB) {
    const parts = chunks(body(mb));
    const skeinMs = await timeSkein(skein, parts);
    const sdkMs = SDK_SIZES_MB.includes(mb) ? await timeSdk(sdk, parts) : undefined;
    rows.push([`${mb} MB`, skeinMs / 1000, (skeinMs / mb).toFixed(1), sdkMs === undefined ? "(not run)" : sdkMs / 1000, sdkMs === undefined ? "" : (sdkMs / mb).toFixed(0)]);
  }
  return [
    {
      title: "session: parsing one huge SSE line",
      columns: ["line", "skein decoder s", "skein ms/MB", "openai SDK parser s", "SDK ms/MB"],
      rows,
      notes: [
        "one OpenAI chunk whose text delta is the given size, fed in 64 KiB pieces; JSON.parse included on both sides",
        "skein reads the provider's raw body with its own decoder since the SDK's parser copies and rescans its buffer for every piece",
      ],
    },
  ];
}
