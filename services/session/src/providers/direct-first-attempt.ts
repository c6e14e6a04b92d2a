import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { decoded, headerList, isRedirect, nodeFetch, sendNode, toResponse, type HeaderList } from "./node-fetch.js";

/** What a Stainless-generated SDK client (openai's, anthropic's) offers that the direct attempt needs. */
export interface SdkClient<C> {
  buildRequest(options: { method: "post"; path: string; body: object }, opts?: { retryCount?: number }): Promise<{ req: { headers?: unknown }; url: string }>;
  withOptions(options: { fetch: typeof nodeFetch }): C;
}

/** A successful streamed response's body, as a Node stream (no fetch Response built around it). */
export interface NodeBody {
  readonly nodeBody: Readable;
}

type FirstAttempt = { readonly res: IncomingMessage } | { readonly error: unknown };

/**
 * A model request's first attempt sent straight over node:http, with the
 * very URL and headers the SDK builds for it (read from the SDK once per
 * client: auth, user agent, platform and custom headers). The SDK's request
 * machinery (option merging, header building, its retry loop, per-attempt
 * AbortController and timer, log-line formatting even with logging off) and
 * the fetch Response built around each answer cost more per reply than the
 * reply's 100 streamed deltas; the paced bench showed them as the largest
 * per-reply costs.
 *
 * Only a success (2xx) is handled here. Anything else (an error status, a
 * redirect, a connection failure, a body that is not JSON where JSON is
 * expected) goes to the SDK as its first attempt's outcome, as if its own
 * fetch had returned it: its status checks, retries with back-off and error
 * classes apply exactly as before.
 */
export class DirectFirstAttempt<C> {
  private target: Promise<{ url: URL; headers: HeaderList }> | undefined;

  constructor(
    private readonly client: SdkClient<C>,
    private readonly path: string,
  ) {}

  /** Posts `body` for a streamed answer; `sdk` sends the same request through the given client (only when the first attempt did not succeed). */
  async stream(body: object, signal: AbortSignal, sdk: (client: C) => Promise<Response>): Promise<NodeBody | Response> {
    const first = await this.send(body, signal);
    if ("res" in first && succeeded(first.res)) return { nodeBody: decoded(first.res) };
    return this.bySdk(first, sdk);
  }

  /** Posts `body` for a JSON answer (non-streaming), parsed; otherwise as `stream`. */
  async json(body: object, signal: AbortSignal, sdk: (client: C) => Promise<unknown>): Promise<unknown> {
    const first = await this.send(body, signal);
    // A 204 or an empty body the SDK answers without parsing: left to it.
    if ("res" in first && succeeded(first.res) && first.res.statusCode !== 204 && first.res.headers["content-length"] !== "0" && isJson(first.res)) {
      const chunks: Buffer[] = [];
      for await (const chunk of decoded(first.res)) chunks.push(chunk as Buffer);
      // As the SDK's response.json(): a SyntaxError for a body that is not JSON.
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    }
    return this.bySdk(first, sdk);
  }

  private async send(body: object, signal: AbortSignal): Promise<FirstAttempt> {
    const { url, headers } = await (this.target ??= this.sdkTarget());
    return sendNode(url, "POST", headers, JSON.stringify(body), signal).then(
      (res) => ({ res }),
      (error: unknown) => ({ error }),
    );
  }

  /** The SDK's turn, its fetch handing the first attempt's outcome as its own first (a redirect is sent again, as nodeFetch does). */
  private async bySdk<T>(first: FirstAttempt, sdk: (client: C) => Promise<T>): Promise<T> {
    let handed = false;
    if ("res" in first && isRedirect(first.res)) {
      first.res.resume();
      handed = true;
    }
    const replay = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (handed) return nodeFetch(input, init);
      handed = true;
      return "res" in first ? Promise.resolve(toResponse(first.res, "POST")) : Promise.reject(first.error);
    };
    try {
      return await sdk(this.client.withOptions({ fetch: replay }));
    } finally {
      // The SDK gave up before looking (the call was stopped): the connection is freed.
      if (!handed && "res" in first) first.res.destroy();
    }
  }

  private async sdkTarget(): Promise<{ url: URL; headers: HeaderList }> {
    const { req, url } = await this.client.buildRequest({ method: "post", path: this.path, body: {} });
    const headers: Record<string, string> = {};
    new Headers(req.headers as ConstructorParameters<typeof Headers>[0]).forEach((value, name) => {
      if (name !== "content-length") headers[name] = value;
    });
    const target = new URL(url);
    return { url: target, headers: headerList(target, headers) };
  }
}

function succeeded(res: IncomingMessage): boolean {
  const status = res.statusCode ?? 0;
  return status >= 200 && status < 300;
}

/** What the SDKs parse as JSON. */
function isJson(res: IncomingMessage): boolean {
  const type = String(res.headers["content-type"] ?? "").split(";")[0]!.trim();
  return type.includes("application/json") || type.endsWith("+json");
}
