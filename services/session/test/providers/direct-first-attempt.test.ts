// The OpenAI provider's first attempt goes out without the SDK's request machinery (DirectFirstAttempt);
// against a real HTTP server: it sends what the SDK sends, and whatever is not a success is the SDK's to
// handle, retries and error classes as before.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { message, textItem } from "@skein/goose-sessions/goose-format";
import { OpenAIProvider } from "../../src/providers/openai.js";
import { ProviderError, type ModelChunk } from "../../src/providers/provider.js";

let server: Server;
let baseURL: string;
const seen: { headers: IncomingMessage["headers"]; body: string }[] = [];
/** What the server answers, request by request (the last one repeats). */
let answers: Array<{ status: number; headers?: Record<string, string>; body: string }> = [];

const STREAM = ['{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}', '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', "[DONE]"]
  .map((d) => `data: ${d}\n\n`)
  .join("");
const ok = { status: 200, headers: { "content-type": "text/event-stream" }, body: STREAM };

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = "";
    for await (const piece of req) body += String(piece);
    seen.push({ headers: req.headers, body });
    const a = answers[Math.min(seen.length - 1, answers.length - 1)]!;
    res.writeHead(a.status, a.headers ?? { "content-type": "application/json" }).end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  seen.length = 0;
});

async function reply(maxRetries = 2): Promise<{ text: string; error?: ProviderError }> {
  let text = "";
  try {
    const chunks = provider(maxRetries).stream({ system: "sys", messages: [message("user", [textItem("hello")])], tools: [], signal: new AbortController().signal });
    for await (const batch of chunks) for (const c of batch as ModelChunk[]) if (c.type === "text") text += c.text;
  } catch (err) {
    return { text, error: err as ProviderError };
  }
  return { text };
}

const provider = (maxRetries = 2) => new OpenAIProvider({ model: "m", baseURL, apiKey: "key-1", idleTimeoutMs: 5_000, maxRetries, maxTokens: 100 });
const COMPLETION = JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content: "four words at most" }, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });

describe("the OpenAI provider's direct first attempt", () => {
  it("sends the SDK's URL, headers and body, and streams a success", async () => {
    answers = [ok];
    expect(await reply()).toEqual({ text: "hi" });
    expect(seen).toHaveLength(1);
    const { headers, body } = seen[0]!;
    expect(headers.authorization).toBe("Bearer key-1");
    expect(headers["content-type"]).toBe("application/json");
    expect(headers.accept).toBe("application/json");
    expect(headers["user-agent"]).toMatch(/^OpenAI\/JS /);
    expect(headers["x-stainless-retry-count"]).toBe("0");
    // The head goes out ready-made (see headerList): Host and the body's length are there, no chunked body.
    expect(headers.host).toBe(new URL(baseURL).host);
    expect(headers["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(headers["transfer-encoding"]).toBeUndefined();
    expect(JSON.parse(body)).toMatchObject({ model: "m", stream: true, stream_options: { include_usage: true }, messages: [{ role: "system", content: "sys" }, { role: "user", content: "hello" }] });
  });

  it("an error status the SDK retries is retried by the SDK, with the same request", async () => {
    answers = [{ status: 503, headers: { "content-type": "application/json", "retry-after-ms": "5" }, body: '{"error":{"message":"busy"}}' }, ok];
    expect(await reply()).toEqual({ text: "hi" });
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers["x-stainless-retry-count"]).toBe("1");
    expect(seen[1]!.body).toBe(seen[0]!.body);
    expect(seen[1]!.headers.authorization).toBe(seen[0]!.headers.authorization);
  });

  it("retries stop where the SDK's stop (1 + maxRetries attempts), with its error", async () => {
    answers = [{ status: 503, headers: { "content-type": "application/json", "retry-after-ms": "5" }, body: '{"error":{"message":"still busy"}}' }];
    const r = await reply(2);
    expect(seen).toHaveLength(3);
    expect(r.error?.code).toBe("PROVIDER_HTTP_ERROR");
    expect(r.error?.message).toMatch(/^the provider answered HTTP 503: .*still busy/);
  });

  it("an error status the SDK does not retry is its error at once", async () => {
    answers = [{ status: 400, body: '{"error":{"message":"no such model"}}' }];
    const r = await reply();
    expect(seen).toHaveLength(1);
    expect(r.error?.code).toBe("PROVIDER_HTTP_ERROR");
    expect(r.error?.message).toMatch(/^the provider answered HTTP 400: .*no such model/);
  });

  const complete = () => provider().complete({ system: "sys", messages: [message("user", [textItem("describe")])], signal: new AbortController().signal });

  it("a non-streaming call: the SDK's headers, the JSON answer parsed", async () => {
    answers = [{ status: 200, body: COMPLETION }];
    expect(await complete()).toEqual({ text: "four words at most", usage: { input: 3, output: 4, total: 7 } });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe("Bearer key-1");
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ model: "m", stream: false });
  });

  it("a non-streaming call: retried by the SDK after a 503; a 2xx that is not JSON is the SDK's to read (no choice in it)", async () => {
    answers = [{ status: 503, headers: { "content-type": "application/json", "retry-after-ms": "5" }, body: "{}" }, { status: 200, body: COMPLETION }];
    expect((await complete()).text).toBe("four words at most");
    expect(seen).toHaveLength(2);
    seen.length = 0;
    answers = [{ status: 200, headers: { "content-type": "text/plain" }, body: "hello" }];
    await expect(complete()).rejects.toMatchObject({ code: "PROVIDER_MALFORMED_STREAM" });
    expect(seen).toHaveLength(1);
  });
});
