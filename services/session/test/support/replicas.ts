import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, type FakeModelServer, type ScriptedReply } from "@skein/testkit";
import type { Client } from "./harness.js";

/**
 * Helpers for the cross-replica suites: several replicas share one fake
 * provider, so its answers are routed by a tag in the run's user message
 * (`… [[tag:x]]`) instead of by arrival order, and watchers are followed as
 * growing lists that a test waits on (outcomes, never time).
 */

export type AnyEvent = pb.ReplyResponse | pb.WatchSessionResponse;

/** Holds a provider stream mid-reply until the test releases it. */
export { gate } from "@skein/testkit";

const TAG = /\[\[tag:([A-Za-z0-9_-]+)\]\]/;

/** The model's answers per tag, in order; a tag with nothing queued gets `fallback` (plain text). */
export class TaggedModel {
  private readonly queues = new Map<string, ScriptedReply[]>();
  private readonly asked = new Map<string, number>();
  private n = 0;

  constructor(
    model: FakeModelServer,
    private readonly fallback: () => ScriptedReply,
  ) {
    model.setFallback((body) => this.answer(body));
  }

  /** A fresh tag with these answers queued; put `say(tag, …)` in the Reply text. */
  tag(...replies: ScriptedReply[]): string {
    const tag = `t${++this.n}`;
    this.queues.set(tag, [...replies]);
    return tag;
  }

  /** How many provider requests runs with this tag made so far. */
  requests(tag: string): number {
    return this.asked.get(tag) ?? 0;
  }

  private answer(body: Record<string, unknown>): ScriptedReply {
    const messages = (body.messages ?? []) as { role: string; content: unknown }[];
    const lastUser = [...messages].reverse().find((m) => m.role === "user");
    const tag = TAG.exec(JSON.stringify(lastUser?.content ?? ""))?.[1];
    if (tag) this.asked.set(tag, (this.asked.get(tag) ?? 0) + 1);
    return (tag && this.queues.get(tag)?.shift()) || this.fallback();
  }
}

export const say = (tag: string, text = "go") => `${text} [[tag:${tag}]]`;

/** A stream's events as they arrive, and its end (error or not). */
export interface Followed {
  readonly events: AnyEvent[];
  /** Resolves with the status error, or undefined on a clean end. */
  readonly ended: Promise<ServiceError | undefined>;
  /** Waits until `ok(events)` holds; rejects if the stream ends first without it. */
  until(ok: (events: AnyEvent[]) => boolean, timeoutMs?: number): Promise<AnyEvent[]>;
  /** Hangs up (client-side cancel). */
  close(): void;
}

export function follow(stream: ClientReadableStream<AnyEvent>): Followed {
  const events: AnyEvent[] = [];
  const waiters = new Set<() => void>();
  let done = false;
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on("data", (e: AnyEvent) => {
      events.push(e);
      for (const w of waiters) w();
    });
    stream.on("end", () => ((done = true), resolve(undefined), [...waiters].forEach((w) => w())));
    stream.on("error", (err: ServiceError) => ((done = true), resolve(err), [...waiters].forEach((w) => w())));
  });
  return {
    events,
    ended,
    until(ok, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (ok(events)) return finish(), resolve(events);
          if (done) return finish(), reject(new Error(`the stream ended before the awaited events; got ${describe(events)}`));
        };
        const timer = setTimeout(() => (finish(), reject(new Error(`awaited events did not arrive within ${timeoutMs} ms; got ${describe(events)}`))), timeoutMs);
        const finish = () => (clearTimeout(timer), waiters.delete(check));
        waiters.add(check);
        check();
      });
    },
    close() {
      stream.on("error", () => undefined);
      stream.cancel();
    },
  };
}

export const watchOn = (c: Client, sessionId: string, afterSeq: number) =>
  follow(c.watchSession(pb.WatchSessionRequest.fromPartial({ sessionId, afterSeq })) as ClientReadableStream<AnyEvent>);
export const replyOn = (c: Client, sessionId: string, text: string, requestId = "") =>
  follow(c.reply(pb.ReplyRequest.fromPartial({ sessionId, text, requestId })) as ClientReadableStream<AnyEvent>);

export const kind = (e: AnyEvent) => e.event?.$case;
export const isFinished = (e: AnyEvent) => e.event?.$case === "finished";
export const hasFinished = (events: AnyEvent[]) => events.some(isFinished);
export const finishedReason = (events: AnyEvent[]) => {
  const f = events.find(isFinished);
  return f?.event?.$case === "finished" ? f.event.value.reason : undefined;
};
/** One comparable line per event: seq, request, kind and payload. */
export const lines = (events: AnyEvent[]) => events.map((e) => `${e.seq} ${e.requestId} ${e.event?.$case} ${JSON.stringify(e.event?.value)}`);
export const ofRequest = (events: AnyEvent[], requestId: string) => events.filter((e) => e.requestId === requestId);
export function describe(events: AnyEvent[]): string {
  return JSON.stringify(events.map((e) => [e.seq, e.requestId, e.event?.$case, e.event?.$case === "textDelta" ? e.event.value.text : e.event?.$case === "error" ? e.event.value.code : e.event?.$case === "finished" ? e.event.value.reason : undefined]));
}

export async function createOn(c: Client, workingDir: string, extensions: pb.ExtensionConfig[] = []): Promise<pb.Session> {
  return (await call(c, c.createSession, pb.CreateSessionRequest.fromPartial({ workingDir, extensions }))).session!;
}
export const getOn = (c: Client, sessionId: string) => call(c, c.getSession, pb.GetSessionRequest.fromPartial({ sessionId, includeMessages: true }));
export const listOn = (c: Client) => call(c, c.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1000 }));
export const cancelOn = (c: Client, sessionId: string, requestId = "") => call(c, c.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId, requestId }));
export const statsOn = (c: Client) => call(c, c.getStats, pb.GetStatsRequest.fromPartial({}));

/** The seq of a run's last event: the cursor for a watcher that should see only what comes next. */
export const lastSeqOf = (events: AnyEvent[]) => events.reduce((m, e) => Math.max(m, e.seq), 0);

/** Polls a condition the test cannot await directly (another process's state), for at most `timeoutMs`. */
export async function expectEventually(ok: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
