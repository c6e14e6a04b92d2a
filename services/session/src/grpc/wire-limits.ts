import { session as pb } from "@skein/proto";
import type { GooseMessage } from "@skein/goose-sessions/goose-format";
import { messageToProto } from "./wire.js";

/** Room left for a response's other fields (event header, Session) and the length prefixes. */
const envelope = (maxBytes: number): number => Math.min(16 * 1024, Math.floor(maxBytes / 4));
/** What a marker text costs at most, with its content item around it. */
const MARKER_BYTES = 400;

const messageBytes = (m: pb.Message): number => pb.Message.encode(m).finish().length;
const contentBytes = (c: pb.Content): number => pb.Content.encode(c).finish().length;

/**
 * An upper bound of a text-only message's encoded size, without encoding it
 * (every message event of a reply was encoded once more only to be measured;
 * the reply profile at 20 streams showed it); Infinity when an item is not
 * text. UTF-8 takes at most 3 bytes per UTF-16 unit; a field's tag and length
 * prefix at most 6 bytes, Timestamp and role 24, the truncated flag 2.
 */
export function textOnlyBound(m: pb.Message): number {
  let bytes = 6 + m.id.length * 3 + 24 + 2;
  for (const c of m.content) {
    if (c.kind?.$case !== "text") return Number.POSITIVE_INFINITY;
    // Content → TextContent → text: three tags and length prefixes.
    bytes += 18 + c.kind.value.text.length * 3;
  }
  return bytes;
}

function marker(what: string, bytes: number, limit: number): string {
  return `[skein: cut to fit one gRPC response: this ${what} is ${bytes} bytes and a response carries at most ${limit}; the stored session keeps it whole]`;
}

/** The longest prefix of `s` of at most `bytes` UTF-8 bytes, not splitting a character. */
function utf8Prefix(s: string, bytes: number): string {
  if (bytes <= 0) return "";
  if (s.length * 3 <= bytes) return s;
  const head = Buffer.from(s.slice(0, bytes), "utf8");
  if (head.length <= bytes) return head.toString("utf8");
  return head.subarray(0, bytes).toString("utf8").replace(/\uFFFD+$/, "");
}

const text = (t: string): pb.Content => ({ kind: { $case: "text", value: { text: t } } });

/** One content item cut down to about `bytes`, keeping its kind where a marker fits in it; `limit` is the response limit the marker names. */
function shrinkContent(c: pb.Content, bytes: number, limit: number): pb.Content {
  const k = c.kind;
  const size = contentBytes(c);
  const keep = bytes - MARKER_BYTES;
  switch (k?.$case) {
    case "text": {
      const m = marker("text", size, limit);
      return text(`${utf8Prefix(k.value.text, keep)}\n${m}`);
    }
    case "thinking": {
      const m = marker("thinking", size, limit);
      return { kind: { $case: "thinking", value: { thinking: `${utf8Prefix(k.value.thinking, keep)}\n${m}`, signature: "" } } };
    }
    case "toolRequest": {
      const m = marker("tool call's arguments", size, limit);
      return { kind: { $case: "toolRequest", value: { ...k.value, arguments: { skein_truncated: m } } } };
    }
    case "toolResponse": {
      const m = marker("tool result", size, limit);
      const body = k.value.content.map((i) => (typeof i.text === "string" ? i.text : JSON.stringify(i))).join("\n");
      const value = { id: k.value.id, content: [{ type: "text", text: `${utf8Prefix(body, keep)}\n${m}` }], error: utf8Prefix(k.value.error, keep) };
      return { kind: { $case: "toolResponse", value } };
    }
    default:
      return text(marker(k?.$case === "other" ? `${String(k.value?.type)} content` : `${k?.$case ?? "unknown"} content`, size, limit));
  }
}

/**
 * The message itself when it fits in `maxBytes`; else a copy whose largest
 * content items are cut (room is shared: items smaller than their share stay
 * whole), marked `truncated`.
 */
export function fitMessage(m: pb.Message, maxBytes: number, limit = maxBytes): pb.Message {
  if (textOnlyBound(m) <= maxBytes || messageBytes(m) <= maxBytes) return m;
  const sizes = m.content.map(contentBytes);
  const room = maxBytes - 256;
  const allot = new Array<number>(sizes.length);
  let left = room;
  const order = sizes.map((_, i) => i).sort((a, b) => sizes[a]! - sizes[b]!);
  order.forEach((i, n) => {
    allot[i] = Math.min(sizes[i]!, Math.floor(left / (order.length - n)));
    left -= allot[i]!;
  });
  const fitted: pb.Message = {
    ...m,
    truncated: true,
    content: m.content.map((c, i) => (allot[i]! >= sizes[i]! ? c : shrinkContent(c, allot[i]!, limit))),
  };
  if (messageBytes(fitted) <= maxBytes) return fitted;
  // Too many items to give each a marker: one marker stands for the whole content.
  return { ...m, truncated: true, content: [text(marker(`message's content (${m.content.length} items)`, messageBytes(m), limit))] };
}

/** A stream event that fits in `maxBytes`: a message event's message is fitted, long texts are cut. */
export function fitEvent(e: pb.ReplyResponse, maxBytes: number): pb.ReplyResponse {
  const room = maxBytes - envelope(maxBytes);
  const ev = e.event;
  switch (ev?.$case) {
    case "message":
      return ev.value.message ? { ...e, event: { $case: "message", value: { message: fitMessage(ev.value.message, room, maxBytes) } } } : e;
    case "textDelta":
      return ev.value.text.length * 3 <= room ? e : { ...e, event: { $case: "textDelta", value: { text: utf8Prefix(ev.value.text, room - MARKER_BYTES) } } };
    case "error":
      return ev.value.message.length * 3 <= room ? e : { ...e, event: { $case: "error", value: { ...ev.value, message: utf8Prefix(ev.value.message, room) } } };
    default:
      return e;
  }
}

/**
 * Messages from `start` for one GetSession response: at most `count` (0: no
 * count limit), ending before the response would grow over `maxBytes`
 * (`usedBytes` are taken by its other fields). The first message always goes
 * in, fitted if it is too large alone. `next` is where the next page starts.
 */
export function messagePage(
  messages: readonly GooseMessage[],
  start: number,
  count: number,
  maxBytes: number,
  usedBytes: number,
): { messages: pb.Message[]; next: number | undefined } {
  const end = count > 0 ? Math.min(messages.length, start + count) : messages.length;
  const room = maxBytes - envelope(maxBytes) - usedBytes;
  const out: pb.Message[] = [];
  let used = 0;
  let i = start;
  for (; i < end; i++) {
    const m = messageToProto(messages[i]!);
    // Field tag and length prefix of the repeated field: at most 6 bytes.
    const size = messageBytes(m) + 6;
    if (used + size > room) {
      if (out.length > 0) break;
      out.push(fitMessage(m, room - 6, maxBytes));
      used = room;
      continue;
    }
    out.push(m);
    used += size;
  }
  return { messages: out, next: i < messages.length ? i : undefined };
}
