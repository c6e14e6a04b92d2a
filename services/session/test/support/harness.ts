import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, closeClients, connect, startOpenAIServer, startService, type FakeModelServer, type ServiceProcess } from "@skein/testkit";
import type { StoreKind as ConfigStoreKind } from "../../src/config.js";

export type Client = pb.SessionServiceClient;
export type Event = pb.ReplyResponse;

export interface Harness {
  readonly dir: string;
  readonly sessionsDir: string;
  readonly model: FakeModelServer;
  svc: ServiceProcess;
  client: Client;
  /** Restarts the service on the same directory (after a crash or stop). */
  restart(extraEnv?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/** The stores a single host runs on (PostgreSQL has its own harness: testkit startReplicaCluster). */
export type StoreKind = Exclude<ConfigStoreKind, "postgres">;

/**
 * A temp HOME and sessions dir, a fake OpenAI server and the built service
 * pointed at them. Suites that read session files directly run on the JSONL
 * store; `opts.store` picks the other (the service's default is goose-sqlite).
 */
export async function startHarness(env: Record<string, string> = {}, opts: { provider?: boolean; store?: StoreKind; sessionsDir?: string } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "skein-session-"));
  const sessionsDir = opts.sessionsDir ?? join(dir, "sessions");
  const model = await startOpenAIServer();
  const fullEnv = (extra: Record<string, string>) => ({
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, "config"),
    SKEIN_SESSIONS_DIR: sessionsDir,
    SKEIN_SESSION_STORE: opts.store ?? "goose-jsonl",
    SKEIN_PROVIDER_MAX_RETRIES: "0",
    ...(opts.provider === false ? {} : { SKEIN_PROVIDER: "openai", SKEIN_MODEL: "fake-model", OPENAI_BASE_URL: model.baseURL }),
    ...env,
    ...extra,
  });
  let svc: ServiceProcess;
  try {
    svc = await startService("session", fullEnv({}));
  } catch (err) {
    await model.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const h: Harness = {
    dir,
    sessionsDir,
    model,
    svc,
    client: connect(pb.SessionServiceClient, svc.address),
    async restart(extra = {}) {
      await h.svc.stop("SIGKILL");
      h.svc = await startService("session", fullEnv(extra));
      h.client = connect(pb.SessionServiceClient, h.svc.address);
    },
    async close() {
      closeClients();
      await h.svc.stop("SIGKILL");
      await model.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export async function createSession(c: Client, workingDir = tmpdir()): Promise<pb.Session> {
  const res = await call(c, c.createSession, pb.CreateSessionRequest.fromPartial({ workingDir }));
  return res.session!;
}

export function reply(c: Client, sessionId: string, text: string, requestId = ""): ClientReadableStream<Event> {
  return c.reply(pb.ReplyRequest.fromPartial({ sessionId, text, requestId }));
}

export function watch(c: Client, sessionId: string, afterSeq: number): ClientReadableStream<Event> {
  return c.watchSession(pb.WatchSessionRequest.fromPartial({ sessionId, afterSeq })) as ClientReadableStream<Event>;
}

export function getSession(c: Client, sessionId: string, includeMessages = true): Promise<pb.GetSessionResponse> {
  return call(c, c.getSession, pb.GetSessionRequest.fromPartial({ sessionId, includeMessages }));
}

/**
 * Reads events until `until` matches (inclusive) and leaves the stream open and
 * paused (a `for await` break would cancel the call).
 */
export function readUntil(stream: ClientReadableStream<Event>, until: (e: Event) => boolean): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const out: Event[] = [];
    const done = (err?: Error) => {
      stream.off("data", onData).off("end", onEnd).off("error", onError);
      stream.pause();
      if (err) reject(err);
      else resolve(out);
    };
    const onData = (e: Event) => {
      out.push(e);
      if (until(e)) done();
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    stream.on("data", onData).on("end", onEnd).on("error", onError);
    stream.resume();
  });
}

export const cases = (events: Event[]) => events.map((e) => e.event?.$case);
export const isFinished = (e: Event) => e.event?.$case === "finished";
export const finishReason = (events: Event[]) => {
  const last = events[events.length - 1];
  return last?.event?.$case === "finished" ? last.event.value.reason : undefined;
};

/** Polls until `ok(probe())` holds (by default: until the probe returns true), for state reached asynchronously. */
export async function eventually<T>(probe: () => Promise<T> | T, ok: (v: T) => boolean = Boolean, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not reached within ${timeoutMs} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Cancels a call from the client side, swallowing the CANCELLED status it then reports. */
export function hangUp(stream: ClientReadableStream<Event>): void {
  stream.on("error", () => undefined);
  stream.cancel();
}
