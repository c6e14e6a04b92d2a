import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** One server-sent event; `data` is sent as is (it may be deliberately broken). */
export interface SseEvent {
  readonly event?: string;
  readonly data: string;
}

/** How the fake model answers one request. */
export interface ScriptedReply {
  /** Non-200: answer with this status and a JSON error body, no stream. */
  readonly status?: number;
  readonly errorBody?: unknown;
  readonly events?: readonly SseEvent[];
  /** Pause between events. */
  readonly delayMs?: number;
  /** Adds a random 0..jitterMs to each pause (a model's deltas are not evenly spaced). */
  readonly jitterMs?: number;
  /** After this many events, wait for `hold` before sending the rest. */
  readonly holdAfter?: number;
  readonly hold?: Promise<void>;
  /**
   * Sends the whole stream as bytes, `bytes` at a time with `delayMs` between
   * writes: a slow provider, e.g. one huge line arriving over seconds.
   */
  readonly trickle?: { readonly bytes: number; readonly delayMs: number };
  /**
   * How the response ends after the events: `end` closes it properly, `cut`
   * destroys the socket mid-response, `stall` keeps it open and silent until
   * the client goes away.
   */
  readonly ending?: "end" | "cut" | "stall";
}

/** When a streamed request arrived (its handler started) and its first byte was written, performance.now() of the server's process. */
export interface FirstByteTiming {
  readonly arrivedAt: number;
  readonly firstByteAt: number;
}

/** How the fake model answers one non-streaming request (`stream` not true). */
export interface ScriptedCompletion {
  /** Non-200: answer with this status and a JSON error body. */
  readonly status?: number;
  /** The JSON response body. */
  readonly body?: unknown;
  /** Answer only once this settles (or the client went away). */
  readonly hold?: Promise<void>;
}

export interface FakeModelServer {
  /** Base URL to give the SDK (ends in /v1). */
  readonly baseURL: string;
  readonly port: number;
  /** Streaming request bodies in arrival order. */
  readonly requests: Record<string, unknown>[];
  /** Non-streaming request bodies (descriptions, summaries) in arrival order; kept apart so they never take a scripted stream. */
  readonly completions: Record<string, unknown>[];
  enqueueCompletion(...replies: ScriptedCompletion[]): void;
  setCompletionFallback(fallback: (body: Record<string, unknown>) => ScriptedCompletion): void;
  /** Replies answer requests in order; when none is queued, `fallback` answers. */
  enqueue(...replies: ScriptedReply[]): void;
  setFallback(fallback: (body: Record<string, unknown>) => ScriptedReply): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** TCP connections currently open (idle keep-alive ones included). */
  openConnections(): number;
  /** TCP connections accepted since the server started (benchmarks: how many a client opened). */
  readonly connectionsAccepted: number;
  /** Responses started and not yet finished or abandoned. */
  readonly activeResponses: number;
  close(): Promise<void>;
}

/** A local HTTP server speaking a model API's SSE, answering from a script. */
export async function startSseServer(opts: {
  path: string;
  fallback: (body: Record<string, unknown>) => ScriptedReply;
  completionFallback?: (body: Record<string, unknown>) => ScriptedCompletion;
  keepAliveTimeoutMs?: number;
  /** Called once a streamed response's first byte is written (benchmarks: the provider's own time to first byte). */
  onFirstByte?: (body: Record<string, unknown>, timing: FirstByteTiming) => void;
  /** Listen address (default 127.0.0.1); 0.0.0.0 for clients in containers (the container test). */
  host?: string;
}): Promise<FakeModelServer> {
  const queue: ScriptedReply[] = [];
  const requests: Record<string, unknown>[] = [];
  const completionQueue: ScriptedCompletion[] = [];
  const completions: Record<string, unknown>[] = [];
  let completionFallback = opts.completionFallback ?? ((): ScriptedCompletion => ({ status: 400, body: { error: { message: "this fake server only streams" } } }));
  const sockets = new Set<Socket>();
  let accepted = 0;
  let fallback = opts.fallback;
  let active = 0;
  const waiters = new Set<() => void>();

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 1_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    accepted++;
    s.on("close", () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedAt = performance.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== "POST" || !req.url?.endsWith(opts.path)) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    if (body.stream !== true) {
      completions.push(body);
      const c = completionQueue.shift() ?? completionFallback(body);
      if (c.hold) await Promise.race([c.hold, once(res, "close")]);
      if (res.destroyed) return;
      res.writeHead(c.status ?? 200, { "content-type": "application/json" }).end(JSON.stringify(c.body ?? {}));
      return;
    }
    requests.push(body);
    for (const w of waiters) w();
    const reply = queue.shift() ?? fallback(body);
    if (reply.status !== undefined && reply.status !== 200) {
      res.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.errorBody ?? { error: { message: `scripted HTTP ${reply.status}`, type: "server_error" } }));
      return;
    }
    active++;
    let gone = false;
    res.on("close", () => {
      gone = true;
    });
    try {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const events = reply.events ?? [];
      let firstByte = opts.onFirstByte && ((): void => {
        opts.onFirstByte!(body, { arrivedAt, firstByteAt: performance.now() });
        firstByte = undefined;
      });
      if (reply.trickle) {
        const bytes = Buffer.from(events.map(frame).join(""));
        for (let at = 0; at < bytes.length && !gone; at += reply.trickle.bytes) {
          if (at > 0) await new Promise((r) => setTimeout(r, reply.trickle!.delayMs));
          if (!gone) res.write(bytes.subarray(at, at + reply.trickle.bytes));
          firstByte?.();
        }
      }
      // Without delays everything goes out in one write: the fastest provider possible.
      else if (!reply.delayMs && reply.holdAfter === undefined) {
        res.write(events.map(frame).join(""));
        firstByte?.();
      }
      else {
        for (let i = 0; i < events.length && !gone; i++) {
          if (i === reply.holdAfter && reply.hold) await Promise.race([reply.hold, once(res, "close")]);
          if (gone) break;
          if (reply.delayMs && i > 0) await new Promise((r) => setTimeout(r, reply.delayMs! + Math.random() * (reply.jitterMs ?? 0)));
          res.write(frame(events[i]!));
          firstByte?.();
        }
        if (reply.holdAfter !== undefined && reply.holdAfter >= events.length && reply.hold && !gone) await Promise.race([reply.hold, once(res, "close")]);
      }
      if (gone) return;
      switch (reply.ending ?? "end") {
        case "end":
          res.end();
          break;
        case "cut":
          // Let the written events reach the client, then break the connection mid-response.
          await new Promise((r) => setTimeout(r, 20));
          res.socket?.destroy();
          break;
        case "stall":
          await once(res, "close");
          break;
      }
    } finally {
      active--;
    }
  }

  server.listen(0, opts.host ?? "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    completions,
    enqueueCompletion: (...c) => void completionQueue.push(...c),
    setCompletionFallback: (f) => void (completionFallback = f),
    enqueue: (...r) => void queue.push(...r),
    setFallback: (f) => void (fallback = f),
    waitForRequests: (n, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (requests.length >= n) return resolve();
        const t = setTimeout(() => (waiters.delete(check), reject(new Error(`only ${requests.length} of ${n} model requests within ${timeoutMs} ms`))), timeoutMs);
        const check = () => {
          if (requests.length >= n) (clearTimeout(t), waiters.delete(check), resolve());
        };
        waiters.add(check);
      }),
    openConnections: () => sockets.size,
    get connectionsAccepted() {
      return accepted;
    },
    get activeResponses() {
      return active;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function frame(e: SseEvent): string {
  return `${e.event ? `event: ${e.event}\n` : ""}data: ${e.data}\n\n`;
}

/** Resolves when `release()` is called: holds a scripted reply mid-stream. */
export function gate(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}

/** Splits a string into `n` nearly equal pieces (at least one). */
export function split(s: string, n: number): string[] {
  const size = Math.max(1, Math.ceil(s.length / Math.max(1, n)));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length ? out : [""];
}
