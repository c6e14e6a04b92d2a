import { nodeBodyOf, nodeFetch } from "./node-fetch.js";

/** What a Stainless-generated SDK client (openai's, anthropic's) offers that the direct attempt needs. */
export interface SdkClient<C> {
  buildRequest(options: { method: "post"; path: string; body: object }, opts?: { retryCount?: number }): Promise<{ req: { headers?: unknown }; url: string }>;
  withOptions(options: { fetch: typeof nodeFetch }): C;
}

/**
 * A model request's first attempt sent straight with nodeFetch, with the
 * very URL and headers the SDK builds for it (read from the SDK once per
 * client: auth, user agent, platform and custom headers). The SDK's request
 * machinery (option merging, header building, its retry loop, per-attempt
 * AbortController and timer, log-line formatting even with logging off) cost
 * more per reply than the reply's 100 streamed deltas; the paced bench showed
 * it as one of the largest per-reply costs.
 *
 * Only a success (2xx) is handled here. Anything else (an error status, a
 * connection failure) goes to the SDK as its first attempt's outcome, as if
 * its own fetch had returned it: its status checks, retries with back-off and
 * error classes apply exactly as before.
 */
export class DirectFirstAttempt<C> {
  private target: Promise<{ url: string; headers: Record<string, string> }> | undefined;

  constructor(
    private readonly client: SdkClient<C>,
    private readonly path: string,
  ) {}

  /** Posts `body`; `sdk` sends the same request through the given client (used only when the first attempt did not succeed). */
  async post(body: object, signal: AbortSignal, sdk: (client: C) => Promise<Response>): Promise<Response> {
    const { url, headers } = await (this.target ??= this.sdkTarget());
    const first = await nodeFetch(url, { method: "POST", headers, body: JSON.stringify(body), signal }).then(
      (response) => ({ response }),
      (error: unknown) => ({ error }),
    );
    if ("response" in first && first.response.ok) return first.response;
    let handed = false;
    const replay = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (handed) return nodeFetch(input, init);
      handed = true;
      return "response" in first ? Promise.resolve(first.response) : Promise.reject(first.error);
    };
    try {
      return await sdk(this.client.withOptions({ fetch: replay }));
    } finally {
      // The SDK gave up before looking (the call was stopped): the connection is freed.
      if (!handed && "response" in first) nodeBodyOf(first.response)?.destroy();
    }
  }

  private async sdkTarget(): Promise<{ url: string; headers: Record<string, string> }> {
    const { req, url } = await this.client.buildRequest({ method: "post", path: this.path, body: {} });
    const headers: Record<string, string> = {};
    new Headers(req.headers as ConstructorParameters<typeof Headers>[0]).forEach((value, name) => {
      if (name !== "content-length") headers[name] = value;
    });
    return { url, headers };
  }
}
