import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { session as pb } from "@skein/proto";
import { call, connect } from "@skein/testkit";
import { pool } from "../measure.js";
import { monoMs, serveCommands } from "./commands.js";
import { oneReply, takeDeltaBytes, type ReplyRecord, type StreamsResult } from "./one-reply.js";
import { soak, type SoakOptions, type SoakCounts } from "./soak-traffic.js";

/**
 * The client process: drives Reply streams against the session service (or
 * the bare server) and reports counts and CLOCK_MONOTONIC timestamps.
 */
let client: pb.SessionServiceClient | undefined;
function connected(): pb.SessionServiceClient {
  if (!client) throw new Error("connect first");
  return client;
}

serveCommands({
  connect: ({ address }: { address: string }) => void (client = connect(pb.SessionServiceClient, address)),
  create: async ({ n, width }: { n: number; width: number }) => {
    const ids: string[] = [];
    await pool(Array.from({ length: n }, (_, i) => i), width, async () => {
      const res = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(connected(), connected().createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }));
      ids.push(res.session!.id);
    });
    return ids;
  },
  /**
   * Each stream runs its replies one after another on its own session; the
   * streams run at once, or with `oneAtATime` a single reply at a time, round
   * robin over the sessions. `tag` appends "tag=<unique>" to each reply's
   * text; `pauseMs` waits after each reply.
   */
  streams: async (o: { sessionIds: string[]; replies: number; text: string; tag?: boolean; pauseMs?: number; oneAtATime?: boolean }): Promise<StreamsResult> => {
    const c = connected();
    takeDeltaBytes();
    const replies: ReplyRecord[] = [];
    const one = async (id: string, s: number, r: number) => {
      const tag = `${s}-${r}-${randomUUID().slice(0, 8)}`;
      replies.push(await oneReply(c, id, o.tag ? `${o.text} tag=${tag}` : o.text, tag));
      if (o.pauseMs) await new Promise((res) => setTimeout(res, o.pauseMs));
    };
    const t0 = monoMs();
    if (o.oneAtATime) {
      for (let r = 0; r < o.replies; r++) for (const [s, id] of o.sessionIds.entries()) await one(id, s, r);
    } else {
      await Promise.all(o.sessionIds.map(async (id, s) => {
        for (let r = 0; r < o.replies; r++) await one(id, s, r);
      }));
    }
    const wallMs = monoMs() - t0;
    return { events: replies.reduce((n, r) => n + r.events, 0), wallMs, replies, deltaBytes: takeDeltaBytes() };
  },
  soakStart: (o: SoakOptions) => void soak.start(connected(), o),
  soakCounts: (): SoakCounts => soak.counts(),
  soakStop: (): Promise<SoakCounts> => soak.stop(),
});
