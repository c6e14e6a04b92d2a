import { StringDecoder } from "node:string_decoder";

/** One server-sent event: its `event` field (null when absent) and its data lines joined by "\n". */
export interface SseMessage {
  readonly event: string | null;
  readonly data: string;
}

/**
 * An incremental server-sent-events decoder that does work proportional to the
 * bytes fed, however long a line grows. (The SDKs' decoders copy and rescan
 * their whole buffer for every network chunk, so one 20 MB line costs seconds
 * of CPU per megabyte.) Each chunk is decoded once, only the new text is
 * searched for line ends, and a line's pieces are joined once, when it ends.
 * Lines end with CRLF, LF or CR, as the SSE spec says; an event without its
 * closing blank line at the end of the stream is dropped, as the spec says.
 */
export class SseDecoder {
  // Node's StringDecoder, not TextDecoder: a third of the CPU per network read (TextDecoder goes through ICU's converter).
  private readonly text = new StringDecoder("utf8");
  /** The stream's first text is still to come: a byte order mark there is dropped (as TextDecoder and the SSE spec do). */
  private atStart = true;
  private pieces: string[] = [];
  /** The last chunk ended with CR: a LF starting the next one belongs to it. */
  private afterCR = false;
  private event: string | null = null;
  /** The event's data lines: the first on its own (most events have one), any more in `moreData`. */
  private data: string | undefined;
  private moreData: string[] | undefined;

  /** Feeds bytes; returns the events they completed. */
  push(chunk: Uint8Array): SseMessage[] {
    return this.lines(this.decoded(this.text.write(chunk)));
  }

  /** The end of the stream: a complete event still pending is not dispatched (the spec drops it). */
  end(): SseMessage[] {
    const out = this.lines(this.decoded(this.text.end()));
    this.pieces = [];
    this.event = null;
    this.data = undefined;
    this.moreData = undefined;
    return out;
  }

  /** Decoded text as the lines see it: without a leading byte order mark. */
  private decoded(s: string): string {
    if (!this.atStart || s === "") return s;
    this.atStart = false;
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  }

  private lines(s: string): SseMessage[] {
    const out: SseMessage[] = [];
    let start = 0;
    if (this.afterCR && s.charCodeAt(0) === 0x0a) start = 1;
    this.afterCR = false;
    // Providers end lines with LF: then the engine's indexOf finds each end (far cheaper than a loop over every character).
    const lfOnly = s.indexOf("\r", start) < 0;
    for (let i = lineEnd(s, start, lfOnly); i >= 0; i = lineEnd(s, start, lfOnly)) {
      const c = s.charCodeAt(i);
      // Most lines end in the chunk they began in: no pieces to join.
      let line = s.slice(start, i);
      if (this.pieces.length > 0) {
        this.pieces.push(line);
        line = this.pieces.join("");
        this.pieces = [];
      }
      const e = this.line(line);
      if (e) out.push(e);
      if (c === 0x0d) {
        if (i + 1 === s.length) this.afterCR = true;
        else if (s.charCodeAt(i + 1) === 0x0a) i++;
      }
      start = i + 1;
    }
    if (start < s.length) this.pieces.push(s.slice(start));
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") {
      if (this.event === null && this.data === undefined) return undefined;
      const data = this.moreData ? [this.data, ...this.moreData].join("\n") : (this.data ?? "");
      const e = { event: this.event, data };
      this.event = null;
      this.data = undefined;
      this.moreData = undefined;
      return e;
    }
    if (line.charCodeAt(0) === 0x3a) return undefined; // ":" starts a comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") {
      if (this.data === undefined) this.data = value;
      else (this.moreData ??= []).push(value);
    }
    return undefined;
  }
}


/** Where the next line ending (CR or LF) at or after `from` is, or -1. */
function lineEnd(s: string, from: number, lfOnly: boolean): number {
  if (lfOnly) return s.indexOf("\n", from);
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i;
  }
  return -1;
}
