import { session as pb } from "@skein/proto";
import { batchesOf, isBatchSource, mapBatches, selfEndingStream, type BatchSource, type ServiceImplementation, type StreamSource, InvalidArgumentError } from "@skein/runtime";
import type { RawExtensionConfig } from "../extensions/index.js";
import type { Sessions } from "../sessions.js";
import { messagePageRequest, messagePageToken } from "./message-pages.js";
import { eventToProto, modeFromProto, permissionFromProto, sessionToProto, toolToProto } from "./wire.js";
import { fitEvent, messagePage } from "./wire-limits.js";
import type { SessionEvent } from "../runs/events.js";

type Impl = ServiceImplementation<typeof pb.SessionServiceService>;

const NOT_LIVE = { runningRequestId: "", lastSeq: 0 };

/** proto ExtensionConfig → the extension layer's raw input (it validates). */
function rawExtension(e: pb.ExtensionConfig): RawExtensionConfig {
  return { name: e.name, cmd: e.cmd, args: e.args, env: e.env, timeout_seconds: e.timeoutSeconds };
}

export function sessionHandlers(sessions: Sessions, limits: { maxResponseBytes: number }): Impl {
  const event = (e: SessionEvent) => fitEvent(eventToProto(e), limits.maxResponseBytes);
  // Batches of events straight to the call (from the event log, or any async iterable of events).
  const stream = (events: StreamSource<SessionEvent>): BatchSource<pb.ReplyResponse> => mapBatches(isBatchSource(events) ? events : batchesOf(events), event);
  const toProto = async (info: Parameters<typeof sessionToProto>[0], messageCount?: number) =>
    sessionToProto(info, (await sessions.live([info.id])).get(info.id) ?? NOT_LIVE, sessions.extensionsOf(info), messageCount);
  return {
    createSession: async (req, ctx) => {
      const info = await sessions.create(req.workingDir, req.description, req.extensions.map(rawExtension), modeFromProto(req.mode), ctx.signal);
      return pb.CreateSessionResponse.fromPartial({ session: await toProto(info) });
    },

    getSession: async (req) => {
      const s = await sessions.get(req.sessionId, req.includeMessages);
      if (!("messages" in s)) return pb.GetSessionResponse.fromPartial({ session: await toProto(s) });
      const { start, size } = messagePageRequest(req.messagePageSize, req.messagePageToken, s.messages.length);
      const session = await toProto(s, s.messages.length);
      const page = messagePage(s.messages, start, size, limits.maxResponseBytes, pb.Session.encode(session).finish().length);
      const nextMessagePageToken = page.next === undefined ? "" : messagePageToken(page.next);
      return pb.GetSessionResponse.fromPartial({ session, messages: page.messages, nextMessagePageToken });
    },

    listSessions: async (req) => {
      const page = await sessions.list(req.pageSize, req.pageToken);
      const live = await sessions.live(page.sessions.map((s) => s.id));
      const list = page.sessions.map((s) => sessionToProto(s, live.get(s.id) ?? NOT_LIVE, sessions.extensionsOf(s)));
      return pb.ListSessionsResponse.fromPartial({ sessions: list, nextPageToken: page.nextPageToken });
    },

    deleteSession: async (req) => {
      await sessions.delete(req.sessionId);
      return pb.DeleteSessionResponse.fromPartial({});
    },

    // Ends with its run's `finished`, also at shutdown (the run is stopped, then the stream ends).
    reply: selfEndingStream(async (req, ctx) => stream(await sessions.reply(req.sessionId, req.text, req.requestId || ctx.requestId, [ctx.signal]))),

    watchSession: async (req, ctx) => stream(await sessions.watch(req.sessionId, req.afterSeq, [ctx.signal, ctx.draining])),

    cancelReply: async (req) => pb.CancelReplyResponse.fromPartial({ cancelled: await sessions.cancel(req.sessionId, req.requestId) }),

    addExtension: async (req, ctx) => {
      const tools = await sessions.addExtension(req.sessionId, req.extension && rawExtension(req.extension), ctx.signal);
      return pb.AddExtensionResponse.fromPartial({ tools: tools.map(toolToProto) });
    },

    removeExtension: async (req) => {
      await sessions.removeExtension(req.sessionId, req.name);
      return pb.RemoveExtensionResponse.fromPartial({});
    },

    listTools: async (req) => pb.ListToolsResponse.fromPartial({ tools: (await sessions.listTools(req.sessionId)).map(toolToProto) }),

    summarizeSession: async (req, ctx) => {
      const { session, summary } = await sessions.summarize(req.sessionId, ctx.signal);
      return pb.SummarizeSessionResponse.fromPartial({ session: await toProto(session), summary });
    },

    getStats: async () => pb.GetStatsResponse.fromPartial(await sessions.stats()),

    updateSession: async (req) => {
      if (req.mode !== undefined && req.mode !== pb.PermissionMode.PERMISSION_MODE_UNSPECIFIED && modeFromProto(req.mode) === undefined) {
        throw new InvalidArgumentError("mode", `unknown PermissionMode ${req.mode}`);
      }
      const info = await sessions.update(req.sessionId, modeFromProto(req.mode), req.description);
      return pb.UpdateSessionResponse.fromPartial({ session: await toProto(info) });
    },

    confirmToolCall: async (req, ctx) => {
      await sessions.confirm(req.sessionId, req.toolCallId, permissionFromProto(req.permission), { requestId: ctx.requestId, peer: ctx.peer });
      return pb.ConfirmToolCallResponse.fromPartial({});
    },
  };
}
