import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { status, type ServiceError } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call } from "@skein/testkit";
import { oneReply } from "./one-reply.js";

export interface SoakOptions {
  /** Sessions in rotation (more than SKEIN_MAX_LIVE_AGENTS, so agents are evicted). */
  readonly sessions: number;
  readonly workers: number;
  /** Pause after each action, per worker. */
  readonly pauseMs: number;
  /** The reply script (see procs/provider.ts), e.g. "deltas=40 delay=1". */
  readonly script: string;
}

export type SoakCounts = Record<string, number>;

/**
 * Mixed traffic until stopped: full replies, clients hanging up after the
 * first event, CancelReply mid-run, short WatchSession calls, and sessions
 * replaced (created, the old one deleted). One action per session at a time.
 */
class SoakTraffic {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private readonly tally: SoakCounts = {};

  start(c: pb.SessionServiceClient, o: SoakOptions): void {
    this.running = true;
    this.done = (async () => {
      const ids: string[] = [];
      for (let i = 0; i < o.sessions; i++) ids.push(await create(c));
      const busy = new Set<number>();
      await Promise.all(
        Array.from({ length: o.workers }, async () => {
          while (this.running) {
            let slot = Math.floor(Math.random() * ids.length);
            while (busy.has(slot)) slot = (slot + 1) % ids.length;
            busy.add(slot);
            try {
              await this.action(c, ids, slot, o.script);
            } catch (err) {
              this.count(`error ${status[(err as ServiceError).code] ?? ""}: ${withoutIds((err as ServiceError).details ?? (err as Error).message)}`);
            } finally {
              busy.delete(slot);
            }
            await new Promise((r) => setTimeout(r, o.pauseMs));
          }
        }),
      );
    })();
  }

  counts(): SoakCounts {
    return { ...this.tally };
  }

  async stop(): Promise<SoakCounts> {
    this.running = false;
    await this.done;
    return this.counts();
  }

  private count(what: string): void {
    // A hung-up reply's run goes on, so the next action on its session may find it busy: expected, counted apart.
    const key = /FAILED_PRECONDITION.*is busy/.test(what) ? "refused: session busy (a hung-up or cancelled run still going)" : what.slice(0, 100);
    this.tally[key] = (this.tally[key] ?? 0) + 1;
  }

  private async action(c: pb.SessionServiceClient, ids: string[], slot: number, script: string): Promise<void> {
    const id = ids[slot]!;
    const r = Math.random();
    if (r < 0.45) {
      const rec = await oneReply(c, id, script, "");
      this.count(rec.error ? `error ${withoutIds(rec.error)}` : `reply ${rec.finish}`);
    } else if (r < 0.65) {
      await this.interrupted(c, id, script, "hang-up");
    } else if (r < 0.8) {
      await this.interrupted(c, id, script, "cancel");
    } else if (r < 0.92) {
      const w = c.watchSession(pb.WatchSessionRequest.fromPartial({ sessionId: id, afterSeq: 0 }));
      w.on("data", () => {});
      const ended = new Promise<void>((res) => (w.on("error", () => res()), w.on("end", () => res())));
      await new Promise((res) => setTimeout(res, 50));
      w.cancel();
      await ended;
      this.count("watch");
    } else {
      ids[slot] = await create(c);
      await call<pb.DeleteSessionRequest, pb.DeleteSessionResponse>(c, c.deleteSession, { sessionId: id });
      this.count("session replaced");
    }
  }

  /** A reply whose client hangs up, or calls CancelReply, once the first event arrives. */
  private interrupted(c: pb.SessionServiceClient, sessionId: string, script: string, how: "hang-up" | "cancel"): Promise<void> {
    const requestId = randomUUID();
    const stream = c.reply(pb.ReplyRequest.fromPartial({ sessionId, text: script, requestId }));
    return new Promise<void>((resolve) => {
      let first = true;
      stream.on("data", (e: pb.ReplyResponse) => {
        if (e.event?.$case === "finished") this.count(`${how}: finished ${pb.finishReasonToJSON(e.event.value.reason)}`);
        if (!first) return;
        first = false;
        if (how === "hang-up") {
          stream.cancel();
          this.count("hang-up");
        } else {
          call<pb.CancelReplyRequest, pb.CancelReplyResponse>(c, c.cancelReply, { sessionId, requestId }).then(
            () => this.count("cancel"),
            (err: ServiceError) => this.count(`cancel refused ${status[err.code]}: ${withoutIds(err.details)}`),
          );
        }
      });
      stream.on("error", (err: ServiceError) => {
        if (err.code !== status.CANCELLED || how !== "hang-up") this.count(`error ${status[err.code]}: ${withoutIds(err.details)}`);
        resolve();
      });
      stream.on("end", () => resolve());
    });
  }
}

/** An error message as a tally key: ids would make every message unique. */
function withoutIds(message: string): string {
  return message.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{8}_\d+/g, "<id>");
}

async function create(c: pb.SessionServiceClient): Promise<string> {
  const res = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(c, c.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }));
  return res.session!.id;
}

export const soak = new SoakTraffic();
