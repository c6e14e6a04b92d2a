import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

/**
 * A `fetch` for the provider SDKs that sends plain requests over node:http(s),
 * so a streamed response body can be read as a Node stream (see nodeBodyOf):
 * fetch's web-stream body costs a promise chain through undici and web streams
 * per network read, which the paced reply bench showed as the service's
 * largest per-event cost when a model streams one event per read.
 *
 * Everything else it hands to the global fetch unchanged: a Request object, a
 * body that is not a string, and (by sending the request again) a redirect,
 * so fetch's redirect rules stay in force.
 */
export function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const body = init.body ?? undefined;
  if (input instanceof Request || (body !== undefined && typeof body !== "string")) return fetch(input, init);
  const url = new URL(input);
  if (url.protocol !== "http:" && url.protocol !== "https:") return fetch(input, init);
  const signal = init.signal ?? undefined;
  let headers: Record<string, string> = {};
  const given = init.headers;
  // The SDKs hand a Headers object: read as it is (copying it validated every header again).
  if (given instanceof Headers) given.forEach((value, name) => (headers[name] = value));
  // A plain record (DirectFirstAttempt's, built by the SDK once): as it is.
  else if (given !== undefined && !Array.isArray(given)) headers = given as Record<string, string>;
  else new Headers(given).forEach((value, name) => (headers[name] = value));
  const method = init.method ?? "GET";
  return sendNode(url, method, headers, body, signal).then((res) => {
    if (isRedirect(res)) {
      res.resume();
      return fetch(input, init);
    }
    return toResponse(res, method);
  });
}

/**
 * A request's headers as node:http takes them ready-made: name, value, name,
 * value… (see headerList), for requests sent many times with the same ones.
 */
export type HeaderList = readonly string[] & { readonly [HEADER_LIST]: true };
const HEADER_LIST = Symbol("skein.headerList");

/**
 * `headers` (without a length, which sendNode adds per body) as a HeaderList
 * for requests to `url`. Given as a record, node:http sets each header on the
 * request one by one, keeping every one as its own [name, value] pair in a
 * table of the request's, and adds Host; a list goes into the request head
 * as it is (each name and value still validated), Host included here. With
 * the SDK's dozen headers that table was the largest part of what a reply's
 * request kept for the reply's whole life (heap snapshots of 200 paced replies).
 */
export function headerList(url: URL, headers: Record<string, string>): HeaderList {
  const list: string[] = [];
  let host = false;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === "content-length") continue;
    if (lower === "host") host = true;
    list.push(name, value);
  }
  if (!host) list.push("host", url.host);
  return Object.assign(list, { [HEADER_LIST]: true as const });
}

/** One request over node:http(s) on the provider agents; resolves with the response head (its body unread). Rejects with an AbortError once `signal` aborts. */
export function sendNode(url: URL, method: string, headers: Record<string, string> | HeaderList, body: string | undefined, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const https = url.protocol === "https:";
  const send = https ? httpsRequest : httpRequest;
  // A list goes into the head as given: the body's length is added here (node:http adds none to a list; without one a POST would go chunked).
  const head = Array.isArray(headers) ? (body === undefined ? [...headers] : [...headers, "content-length", String(Buffer.byteLength(body))]) : headers;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, { method, headers: head, agent: https ? HTTPS_AGENT : HTTP_AGENT }, resolve);
    if (signal) stopOnAbort(req, signal);
    req.once("error", reject);
    req.end(body);
  });
}

/** A redirect nodeFetch leaves to fetch (sending the request again there). */
export function isRedirect(res: IncomingMessage): boolean {
  return REDIRECT.has(res.statusCode ?? 0) && res.headers.location !== undefined;
}

/**
 * What http.request's `signal` option does (the request, and with it a
 * response being read, is destroyed with an AbortError), with one listener
 * that goes once the request closes: the option's own bookkeeping cost about
 * as much as building the rest of the request.
 */
function stopOnAbort(req: ClientRequest, signal: AbortSignal): void {
  const onAbort = () => req.destroy(abortError(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  req.once("close", () => signal.removeEventListener("abort", onAbort));
}

/**
 * Provider connections stay open between replies (as node's global agent
 * does), but without its cap of 256 idle ones: a host with hundreds of
 * replies in flight, each with its own request (and, for a session's first
 * replies, a description request beside it), had every connection above 256
 * closed once idle and a new one opened for the next reply (the paced bench
 * at 200 replies showed the connects). Idle ones still close after 5 s, or
 * sooner when the provider closes them.
 */
const AGENT_OPTIONS = { keepAlive: true, timeout: 5_000, scheduling: "lifo", maxFreeSockets: 4_096 } as const;
const HTTP_AGENT = new HttpAgent(AGENT_OPTIONS);
const HTTPS_AGENT = new HttpsAgent(AGENT_OPTIONS);

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error("The operation was aborted", { cause: signal.reason }), { name: "AbortError", code: "ABORT_ERR" });
}

/** The response body as a Node stream, when `nodeFetch` made the response (else undefined: read `res.body`). */
export function nodeBodyOf(res: Response): Readable | undefined {
  return (res as NodeBodied)[NODE_BODY];
}

// A property of the response, not a WeakMap entry: when GC clears a WeakMap's dead entries V8 keeps the table's
// size, so it stays as large as the most responses ever waiting for a full GC (it grew with the replies served).
const NODE_BODY = Symbol("skein.nodeBody");
type NodeBodied = Response & { [NODE_BODY]?: Readable };
const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** Statuses whose Response must have a null body (the Response constructor throws otherwise). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/** The response as fetch would give it; its body also as a Node stream (nodeBodyOf). */
export function toResponse(res: IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const status = res.statusCode ?? 0;
  const init = { status, statusText: res.statusMessage ?? "", headers };
  if (NULL_BODY.has(status) || method === "HEAD") {
    res.resume();
    return new Response(null, init);
  }
  const stream = decoded(res);
  // For whoever reads `response.body` (the SDKs read an error status's body
  // through it): pulls from the Node stream only when read. highWaterMark 0,
  // so nothing is taken from the Node stream before a read asks for it.
  let chunks: AsyncIterator<Buffer> | undefined;
  const web = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        chunks ??= stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      cancel() {
        stream.destroy();
      },
    },
    { highWaterMark: 0 },
  );
  const response: NodeBodied = new Response(web, init);
  response[NODE_BODY] = stream;
  return response;
}

/** The body with its content-encoding undone, as fetch does. */
export function decoded(res: IncomingMessage): Readable {
  const encoding = String(res.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  const decoder =
    encoding === "gzip" || encoding === "x-gzip" ? createGunzip() : encoding === "deflate" ? createInflate() : encoding === "br" ? createBrotliDecompress() : undefined;
  if (!decoder) return res;
  // A cut response errors the decoder too, so a reader sees the break.
  return pipeline(res, decoder, () => undefined);
}
