import type { StreamsResult } from "./procs/one-reply.js";
import { startReplyRig, type ReplyRig } from "./bench-service.js";
import { forkChild, type BenchChild } from "./child.js";
import { quantile } from "./stats.js";
import type { Table } from "./table.js";

/**
 * Issue 12 goal 3: time from Reply to its first event, minus the provider's
 * own time to first byte, on an idle service (one reply at a time). The
 * provider process timestamps each request's arrival and first byte on
 * CLOCK_MONOTONIC, the clock the client process uses too.
 */
const SESSIONS = 20;
const REPLIES_PER_SESSION = 10;
const SCRIPT = "deltas=20 delay=0";
const PAUSE_MS = 10;

interface Timing {
  readonly arrivedAt: number;
  readonly firstByteAt: number;
}

/** One pass: 200 replies one at a time with `pauseMs` between them, and the bare server's round trips the same way. */
async function measure(rig: ReplyRig, bareClient: BenchChild, pauseMs: number) {
  const ids = await rig.client.call<string[]>("create", { n: SESSIONS, width: 1 });
  const r = await rig.client.call<StreamsResult>("streams", { sessionIds: ids, replies: REPLIES_PER_SESSION, text: SCRIPT, tag: true, pauseMs, oneAtATime: true });
  // The transport floor at this moment: a bare grpc-js server's first message, same client, same pacing.
  const bareIds = Array.from({ length: SESSIONS }, (_, i) => `bare-${i}`);
  await bareClient.call("streams", { sessionIds: bareIds.slice(0, 1), replies: 20, text: "count=20", pauseMs });
  const b = await bareClient.call<StreamsResult>("streams", { sessionIds: bareIds, replies: REPLIES_PER_SESSION, text: "count=20", pauseMs, oneAtATime: true });
  const bareFirst = b.replies.filter((x) => x.firstAt !== undefined).map((x) => x.firstAt! - x.sentAt);
  const timings = await rig.provider.call<Array<Timing | null>>("timings", r.replies.map((x) => x.tag));
  const rows = r.replies.map((x, i) => {
    const t = timings[i];
    if (!t || x.firstAt === undefined || x.firstDeltaAt === undefined || x.error) return undefined;
    const ttfb = t.firstByteAt - t.arrivedAt;
    return {
      cold: x.tag.split("-")[1] === "0",
      kind: x.firstKind,
      first: x.firstAt - x.sentAt,
      delta: x.firstDeltaAt - x.sentAt,
      ttfb,
      before: t.arrivedAt - x.sentAt,
      after: x.firstDeltaAt - t.firstByteAt,
    };
  });
  return { ok: rows.filter((x) => x !== undefined), measured: r.replies.length, bareFirst };
}

export async function run(): Promise<Table[]> {
  const rig = await startReplyRig();
  const bare = await forkChild("bare-server");
  const bareClient = await forkChild("reply-client");
  try {
    await bareClient.call("connect", { address: await bare.call<string>("address") });
    const [warmId] = await rig.client.call<string[]>("create", { n: 1, width: 1 });
    await rig.client.call("streams", { sessionIds: [warmId], replies: 20, text: SCRIPT, pauseMs: PAUSE_MS });
    const { ok, measured, bareFirst } = await measure(rig, bareClient, PAUSE_MS);
    const backToBack = await measure(rig, bareClient, 0);
    type Row = (typeof ok)[number];
    const line = (label: string, pick: (x: Row) => number, of = ok) => [label, quantile(of.map(pick), 0.5), quantile(of.map(pick), 0.99), Math.max(...of.map(pick))];
    const cold = ok.filter((x) => x.cold);
    const warm = ok.filter((x) => !x.cold);
    const kinds = [...new Set(ok.map((x) => x.kind))].join(", ");
    return [
      {
        title: `first-event: Reply → first event on an idle service (${ok.length} of ${measured} replies measured)`,
        columns: ["ms", "p50", "p99", "max"],
        rows: [
          line(`Reply → first event (client; first event kind: ${kinds})`, (x) => x.first),
          line("Reply → first text delta (client)", (x) => x.delta),
          line("provider's own time to first byte (request arrived → first byte written)", (x) => x.ttfb),
          line("added by skein to the first event (first event − provider TTFB)", (x) => x.first - x.ttfb),
          line("added by skein to the first text delta (first delta − provider TTFB)", (x) => x.delta - x.ttfb),
          line("  of which: Reply sent → provider request arrives", (x) => x.before),
          line("  of which: provider first byte → first text delta at the client", (x) => x.after),
          line(`added to the first delta, first reply of a session (${cold.length}: agent loaded, empty history)`, (x) => x.delta - x.ttfb, cold),
          line(`added to the first delta, later replies (${warm.length})`, (x) => x.delta - x.ttfb, warm),
          ["bare grpc-js server in its own process: Reply → first message (the transport floor now)", quantile(bareFirst, 0.5), quantile(bareFirst, 0.99), Math.max(...bareFirst)],
        ],
        notes: [
          `${SESSIONS} sessions × ${REPLIES_PER_SESSION} replies, one reply at a time, round robin, ${PAUSE_MS} ms pause after each; each reply ${SCRIPT.replace(" delay=0", "")} text deltas; after 20 warm-up replies on another session`,
          "skein's first event is the user's message, sent once it is persisted and before the provider is called; the first text delta is what the model said first",
          "timestamps on CLOCK_MONOTONIC in the client and provider processes; the split before/after includes the HTTP request's way to the provider and the SSE bytes' way back",
          "the bare row is two process hops (client → server → client) with no work between: on a loaded machine each hop waits for a core, which the added rows pay too",
          "goal (issue 12): added ≤ 1 ms at p50",
        ],
      },
      {
        title: "first-event: the same, replies back to back (no pause: the CPUs never go idle between replies)",
        columns: ["ms", `p50, ${PAUSE_MS} ms apart`, "p50, back to back", `p99, ${PAUSE_MS} ms apart`, "p99, back to back"],
        rows: [
          compare("added by skein to the first event (first event − provider TTFB)", ok, backToBack.ok, (x) => x.first - x.ttfb),
          compare("added by skein to the first text delta (first delta − provider TTFB)", ok, backToBack.ok, (x) => x.delta - x.ttfb),
          compare("bare grpc-js server: Reply → first message (the transport floor)", bareFirst, backToBack.bareFirst, (x) => x),
        ],
        notes: [
          `${backToBack.ok.length} of ${backToBack.measured} replies measured back to back, on fresh sessions as above`,
          "a client that sends its next Reply as soon as the last ended meets a CPU that is still awake; after a pause the VM's cores wake slowly, and every hop pays it",
        ],
      },
    ];
  } finally {
    await bareClient.stop();
    await bare.stop();
    await rig.stop();
  }
}

/** One row: p50 and p99 of `pick` over two passes, side by side. */
function compare<T>(label: string, a: readonly T[], b: readonly T[], pick: (x: T) => number): (string | number)[] {
  const q = (of: readonly T[], p: number) => quantile(of.map(pick), p);
  return [label, q(a, 0.5), q(b, 0.5), q(a, 0.99), q(b, 0.99)];
}
