import { session as pb } from "@skein/proto";
import type { ServiceImplementation } from "@skein/runtime";
import type { Sessions } from "./sessions.js";
import { eventToProto, messageToProto, sessionToProto } from "./wire.js";

type Impl = Partial<ServiceImplementation<typeof pb.SessionServiceService>>;

/** The RPCs of issue 3; the agent-lifecycle RPCs are added beside them. */
export function sessionHandlers(sessions: Sessions): Impl {
  return {
    createSession: async (req) => {
      const info = await sessions.create(req.workingDir, req.description, req.extensions.length);
      return pb.CreateSessionResponse.fromPartial({ session: sessionToProto(info, sessions.live(info.id)) });
    },

    getSession: async (req) => {
      const s = await sessions.get(req.sessionId, req.includeMessages);
      const messages = "messages" in s ? s.messages : undefined;
      return pb.GetSessionResponse.fromPartial({
        session: sessionToProto(s, sessions.live(s.id), messages?.length),
        messages: messages?.map(messageToProto) ?? [],
      });
    },

    listSessions: async (req) => {
      const page = await sessions.list(req.pageSize, req.pageToken);
      return pb.ListSessionsResponse.fromPartial({
        sessions: page.sessions.map((s) => sessionToProto(s, sessions.live(s.id))),
        nextPageToken: page.nextPageToken,
      });
    },

    deleteSession: async (req) => {
      await sessions.delete(req.sessionId);
      return pb.DeleteSessionResponse.fromPartial({});
    },

    reply: async function* (req, ctx) {
      const events = await sessions.reply(req.sessionId, req.text, req.requestId || ctx.requestId, [ctx.signal]);
      for await (const e of events) yield eventToProto(e);
    },

    watchSession: async function* (req, ctx) {
      const events = await sessions.watch(req.sessionId, req.afterSeq, [ctx.signal, ctx.draining]);
      for await (const e of events) yield eventToProto(e) as pb.WatchSessionResponse;
    },

    cancelReply: async (req) => pb.CancelReplyResponse.fromPartial({ cancelled: await sessions.cancel(req.sessionId, req.requestId) }),
  };
}
