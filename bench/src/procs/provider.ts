import { openaiText, startOpenAIServer, type SseEvent } from "@skein/testkit";
import { perfToMono, serveCommands } from "./commands.js";

/**
 * A fast OpenAI-compatible provider in its own process. The user's message
 * scripts each reply: "deltas=N" text deltas of one character, "delay=M" ms
 * between events (0: the whole reply in one write), "jitter=J" adds a random
 * 0..J ms to each pause, "tag=T" to look up the
 * request's timing later. Time to first byte is measured here, per request.
 */
interface Timing {
  /** Request handler started / first byte written, CLOCK_MONOTONIC ms. */
  readonly arrivedAt: number;
  readonly firstByteAt: number;
}

const timings = new Map<string, Timing>();
const scripts = new Map<number, SseEvent[]>();

function lastUserText(body: Record<string, unknown>): string {
  const messages = body.messages as { role: string; content: unknown }[] | undefined;
  const last = messages?.filter((m) => m.role === "user").at(-1);
  return typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "");
}

const num = (text: string, key: string) => Number(new RegExp(`${key}=(\\d+)`).exec(text)?.[1] ?? NaN);

function textEvents(deltas: number): SseEvent[] {
  let events = scripts.get(deltas);
  if (!events) scripts.set(deltas, (events = openaiText("x".repeat(deltas), { pieces: deltas })));
  return events;
}

const model = await startOpenAIServer({
  keepAliveTimeoutMs: 10_000,
  fallback: (body) => {
    const text = lastUserText(body);
    const deltas = num(text, "deltas");
    const delayMs = num(text, "delay");
    const jitterMs = num(text, "jitter");
    return { events: textEvents(Number.isNaN(deltas) ? 3 : deltas), delayMs: Number.isNaN(delayMs) ? 0 : delayMs, jitterMs: Number.isNaN(jitterMs) ? 0 : jitterMs };
  },
  onFirstByte: (body, t) => {
    const tag = /tag=(\S+)/.exec(lastUserText(body))?.[1];
    if (tag) timings.set(tag, { arrivedAt: perfToMono(t.arrivedAt), firstByteAt: perfToMono(t.firstByteAt) });
  },
});

serveCommands({
  baseURL: () => model.baseURL,
  /** Timings of tagged requests (and forgets them). */
  timings: (tags: string[]) => tags.map((t) => {
    const found = timings.get(t);
    timings.delete(t);
    return found ?? null;
  }),
  // The fake server records every request body; a long run must not grow on that.
  forget: () => {
    model.requests.splice(0);
    model.completions.splice(0);
  },
  stats: () => ({ requests: model.requests.length, completions: model.completions.length, open: model.openConnections(), accepted: model.connectionsAccepted }),
});
