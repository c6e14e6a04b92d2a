import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { session } from "@skein/proto";
import type { Endpoint } from "../clients.js";
import { say, type Command } from "../command.js";
import { CliError, describe } from "../errors.js";
import { follow, onInterrupt } from "../follow.js";
import { jsonOption } from "../options.js";
import { completeJson } from "../proto-json.js";
import { EventPrinter, finishLabel, type StreamedEvent } from "../render.js";

type SessionEndpoint = Endpoint<session.SessionServiceClient>;

export interface ReplyOutcome {
  /** The finished event's reason; undefined when the stream ended without one. */
  readonly reason: session.FinishReason | undefined;
  readonly sawError: boolean;
}

/** Reads a Reply stream to its end, handing every event to `onEvent`. */
export async function consumeReply(s: SessionEndpoint, stream: ClientReadableStream<StreamedEvent>, onEvent: (e: StreamedEvent) => void): Promise<ReplyOutcome> {
  let reason: session.FinishReason | undefined;
  let sawError = false;
  try {
    for await (const e of stream as AsyncIterable<StreamedEvent>) {
      onEvent(e);
      if (e.event?.$case === "error") sawError = true;
      if (e.event?.$case === "finished") reason = e.event.value.reason;
    }
  } catch (err) {
    throw s.error(err);
  }
  return { reason, sawError };
}

export function startReply(s: SessionEndpoint, sessionId: string, text: string, requestId: string): ClientReadableStream<session.ReplyResponse> {
  return s.client.reply(session.ReplyRequest.fromPartial({ sessionId, text, requestId }), s.metadata());
}

export async function cancelReply(s: SessionEndpoint, sessionId: string, requestId: string): Promise<boolean> {
  const res = await s.call(s.client.cancelReply, session.CancelReplyRequest.fromPartial({ sessionId, requestId }));
  return res.cancelled;
}

const EVENTS_JSON = "print each event as one JSON object per line";

const write = (s: string) => void process.stdout.write(s);
const writeErr = (s: string) => void process.stderr.write(s);

const send: Command = {
  name: "send",
  synopsis: "ID TEXT…",
  summary: "send one message and stream the reply (exit 1 unless it finishes normally)",
  details: [
    "TEXT may be several words; `-` reads the message from stdin.",
    "Ctrl-C cancels the reply (CancelReply); a second Ctrl-C stops waiting.",
    "Exit codes: 0 finished normally, 1 error or max turns, 130 cancelled.",
  ],
  options: jsonOption(EVENTS_JSON),
  services: ["session"],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    const words = inv.positionals.slice(1);
    if (words.length === 0) throw inv.usage("missing TEXT");
    const text = words.length === 1 && words[0] === "-" ? readFileSync(0, "utf8") : words.join(" ");
    const s = inv.conn.session();
    const requestId = randomUUID();
    const stream = startReply(s, id, text, requestId);
    let interrupts = 0;
    const off = onInterrupt(() => {
      if (++interrupts > 1) return void stream.cancel();
      writeErr("\nskein: cancelling the reply (Ctrl-C again to stop waiting)\n");
      cancelReply(s, id, requestId).catch((err: unknown) => writeErr(`skein: could not cancel: ${describe(err)}\n`));
    });
    const printer = new EventPrinter({ showUser: false, showFinished: false, out: write, err: writeErr });
    try {
      const outcome = await consumeReply(s, stream, (e) => (inv.json ? say(JSON.stringify(completeJson(session, "ReplyResponse", e as session.ReplyResponse))) : printer.print(e)));
      return replyExitCode(outcome);
    } catch (err) {
      if (interrupts > 1) return 130;
      throw err;
    } finally {
      off();
    }
  },
};

/** What went wrong with a finished reply, for one line on stderr; undefined for a normal finish or a cancel. */
export function replyProblem(o: ReplyOutcome): string | undefined {
  const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED } = session.FinishReason;
  if (o.reason === undefined) return "the reply stream ended before the reply finished";
  if (o.reason === CANCELLED || o.reason === STOP) return undefined;
  return `reply finished: ${finishLabel(o.reason)}`;
}

/** 0 for a normal finish, 130 for a cancelled one, 1 otherwise (naming why on stderr). */
export function replyExitCode(o: ReplyOutcome): number {
  const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED } = session.FinishReason;
  if (o.reason === undefined) throw new CliError(replyProblem(o)!);
  if (o.reason === STOP && !o.sawError) return 0;
  if (o.reason === CANCELLED) {
    writeErr("skein: reply cancelled\n");
    return 130;
  }
  writeErr(`skein: reply finished: ${finishLabel(o.reason)}\n`);
  return 1;
}

const watch: Command = {
  name: "watch",
  synopsis: "ID [--after SEQ]",
  summary: "follow a session's replies (replays buffered events after SEQ first)",
  details: ["Ctrl-C stops watching."],
  options: { after: { type: "string", value: "SEQ", help: "replay buffered events with a higher seq (default 0: all still buffered)" }, ...jsonOption(EVENTS_JSON) },
  services: ["session"],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    inv.atMost(1);
    const afterSeq = inv.int("after", 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const s = inv.conn.session();
    const stream = s.client.watchSession(session.WatchSessionRequest.fromPartial({ sessionId: id, afterSeq }), s.metadata());
    const printer = new EventPrinter({ showUser: true, showFinished: true, out: write, err: writeErr });
    try {
      return await follow(s, stream, (e) => (inv.json ? say(JSON.stringify(completeJson(session, "WatchSessionResponse", e))) : printer.print(e)));
    } finally {
      printer.endLine();
    }
  },
};

export const replyCommands: readonly Command[] = [send, watch];
