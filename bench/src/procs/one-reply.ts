import { randomUUID } from "node:crypto";
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { monoMs } from "./commands.js";

export interface ReplyRecord {
  readonly tag: string;
  readonly sentAt: number;
  /** undefined: no event arrived. */
  readonly firstAt: number | undefined;
  /** The first event's kind (skein's first is the user's message, once persisted). */
  readonly firstKind: string | undefined;
  /** When the first text delta arrived. */
  readonly firstDeltaAt: number | undefined;
  readonly endAt: number;
  readonly events: number;
  readonly finish: string | undefined;
  /** A failed call's status and details. */
  readonly error: string | undefined;
  /** The last error event of the run (code: message), if any. */
  readonly errorEvent: string | undefined;
}

export interface StreamsResult {
  readonly events: number;
  readonly wallMs: number;
  readonly replies: ReplyRecord[];
  /** Encoded size of the first text-delta message seen. */
  readonly deltaBytes: number | undefined;
}

let deltaBytes: number | undefined;

/** Encoded size of the first text-delta message seen since the last call (then forgets it). */
export function takeDeltaBytes(): number | undefined {
  const b = deltaBytes;
  deltaBytes = undefined;
  return b;
}

/** One Reply read to its end, counting events as they arrive (no async iteration: the client should cost little). */
export function oneReply(c: pb.SessionServiceClient, sessionId: string, text: string, tag: string, requestId = randomUUID()): Promise<ReplyRecord> {
  const sentAt = monoMs();
  let firstAt: number | undefined;
  let firstKind: string | undefined;
  let firstDeltaAt: number | undefined;
  let events = 0;
  let finish: string | undefined;
  let errorEvent: string | undefined;
  return new Promise((resolve) => {
    const stream: ClientReadableStream<pb.ReplyResponse> = c.reply(pb.ReplyRequest.fromPartial({ sessionId, text, requestId }), new Metadata());
    stream.on("data", (e: pb.ReplyResponse) => {
      if (events++ === 0) {
        firstAt = monoMs();
        firstKind = e.event?.$case;
      }
      if (e.event?.$case === "finished") finish = pb.finishReasonToJSON(e.event.value.reason);
      else if (e.event?.$case === "error") errorEvent = `${e.event.value.code}: ${e.event.value.message}`;
      else if (firstDeltaAt === undefined && e.event?.$case === "textDelta") {
        firstDeltaAt = monoMs();
        deltaBytes ??= pb.ReplyResponse.encode(e).finish().length;
      }
    });
    stream.on("error", (err: ServiceError) => resolve({ tag, sentAt, firstAt, firstKind, firstDeltaAt, endAt: monoMs(), events, finish, error: `${status[err.code]}: ${err.details}`, errorEvent }));
    stream.on("end", () => resolve({ tag, sentAt, firstAt, firstKind, firstDeltaAt, endAt: monoMs(), events, finish, error: undefined, errorEvent }));
  });
}

