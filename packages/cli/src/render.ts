import { session } from "@skein/proto";
import { compact, enumLabel, localTime } from "./format.js";

type Content = session.Content;
/** ReplyResponse and WatchSessionResponse have the same shape. */
export type StreamedEvent = session.ReplyResponse | session.WatchSessionResponse;

/** Text of MCP content items; non-text items as [type]. */
function toolOutput(items: readonly Record<string, unknown>[]): string {
  return items.map((i) => (i.type === "text" && typeof i.text === "string" ? i.text : `[${String(i.type ?? "content")}]`)).join(" ");
}

/**
 * One line for a tool request or response; `names` maps tool call ids to
 * tool names, since a response carries only the id.
 */
function toolLine(c: Content, names: Map<string, string>): string | undefined {
  const k = c.kind;
  if (k?.$case === "toolRequest") {
    const r = k.value;
    names.set(r.id, r.name);
    const call = `→ ${r.name || "(unnamed tool)"} ${compact(JSON.stringify(r.arguments ?? {}), 100)}`;
    return r.error ? `${call} (invalid call: ${compact(r.error, 80)})` : call;
  }
  if (k?.$case === "toolResponse") {
    const r = k.value;
    const name = names.get(r.id) ?? r.id;
    return r.error ? `← ${name} error: ${compact(r.error, 100)}` : `← ${name}: ${compact(toolOutput(r.content), 100)}`;
  }
  return undefined;
}

/** A message of a stored history, one block per content item. */
export function renderMessage(m: session.Message, names: Map<string, string>): string[] {
  const role = enumLabel(session.roleToJSON(m.role), "ROLE_");
  const head = `[${localTime(m.created)}] ${role}:`;
  const lines: string[] = [];
  for (const c of m.content) {
    const k = c.kind;
    const tool = toolLine(c, names);
    if (tool) lines.push(`${head} ${tool}`);
    else if (k?.$case === "text") lines.push(`${head} ${k.value.text.replace(/\n/g, "\n  ")}`);
    else if (k?.$case === "thinking") lines.push(`${head} (thinking) ${compact(k.value.thinking, 100)}`);
    else if (k?.$case === "image") lines.push(`${head} [image ${k.value.mimeType}]`);
    else if (k?.$case === "redactedThinking") lines.push(`${head} (redacted thinking)`);
    else if (k?.$case === "other") lines.push(`${head} [${String(k.value?.type ?? "other")}]`);
  }
  return lines;
}

export interface EventPrinterOptions {
  /** Show user messages (a watcher did not type them). */
  readonly showUser: boolean;
  /** A line per finished run, with its seq (for `watch --after`). */
  readonly showFinished: boolean;
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

/**
 * Renders a reply as it streams: text deltas as they come, each tool call and
 * tool result on one line, errors on stderr.
 */
export class EventPrinter {
  private midLine = false;
  private readonly names = new Map<string, string>();

  constructor(private readonly o: EventPrinterOptions) {}

  print(e: StreamedEvent): void {
    const ev = e.event;
    switch (ev?.$case) {
      case "textDelta":
        if (ev.value.text === "") return;
        this.o.out(ev.value.text);
        this.midLine = !ev.value.text.endsWith("\n");
        return;
      case "message": {
        const m = ev.value.message;
        if (!m) return;
        for (const c of m.content) {
          const tool = toolLine(c, this.names);
          if (tool) this.line(tool);
          // Assistant text already arrived as deltas.
          else if (c.kind?.$case === "text" && m.role === session.Role.ROLE_USER && this.o.showUser) this.line(`> ${compact(c.kind.value.text, 200)}`);
        }
        return;
      }
      case "error":
        this.endLine();
        this.o.err(`skein: reply error ${ev.value.code}: ${ev.value.message}\n`);
        return;
      case "finished":
        this.endLine();
        if (this.o.showFinished) this.line(`· finished: ${finishLabel(ev.value.reason)} (seq ${e.seq})`);
        return;
      default:
        return;
    }
  }

  /** Ends a line of streamed text, so what follows starts on its own line. */
  endLine(): void {
    if (this.midLine) this.o.out("\n");
    this.midLine = false;
  }

  private line(s: string): void {
    this.endLine();
    this.o.out(`${s}\n`);
  }
}

export function finishLabel(reason: session.FinishReason): string {
  return enumLabel(session.finishReasonToJSON(reason), "FINISH_REASON_");
}
