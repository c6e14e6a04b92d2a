import { loadavg } from "node:os";
import type { StreamsResult } from "./procs/one-reply.js";
import { forkChild, type BenchChild } from "./child.js";
import { startReplyRig } from "./bench-service.js";
import { cpuByThread, cpuDuring, memory } from "./proc-usage.js";
import { quantile } from "./stats.js";
import { MiB, type Table } from "./table.js";

/**
 * Issue 25 goals 1 and 2: replies as models really stream them, a text delta
 * every 10–20 ms per reply, many replies at once. skein's session service
 * against the minimal relay (procs/relay-server.ts: node:http SSE in, one
 * gRPC message per delta out), both fed by the same provider process and
 * driven by a client process each; CPU of every process read from /proc from
 * outside, skein and the relay alternating within one run.
 */
const DELTAS = 100;
const SCRIPT = `deltas=${DELTAS} delay=10 jitter=10`;
/** Concurrent replies and how many replies each stream runs in turn (≥ ~10k events per measurement: CPU is read in 10 ms ticks). */
const ALL_RUNS: ReadonlyArray<{ streams: number; replies: number }> = [
  { streams: 20, replies: 5 },
  { streams: 200, replies: 2 },
  { streams: 1_000, replies: 1 },
];
/** SKEIN_BENCH_PACED_SIZES=20,200 measures only those sizes, in that order (the 1,000 run is heavy on a shared machine; a size named twice is measured twice); the last size chosen gets the detail table. */
const SIZES = process.env.SKEIN_BENCH_PACED_SIZES?.split(",").map(Number);
/**
 * goose (and skein as goose) asks the model for a session's description at
 * each of its first three replies: a second model call beside the reply. The
 * goal's rows measure replies of conversations past that (every session had
 * three replies before), so every size measures the same work; a session's
 * 2nd and 3rd replies are measured apart, at FIRST_REPLIES_STREAMS at once,
 * each round on sessions of its own (SKEIN_BENCH_PACED_FIRST_REPLIES=0 skips them).
 */
const FIRST_REPLIES_STREAMS = 200;
const FIRST_REPLIES = process.env.SKEIN_BENCH_PACED_FIRST_REPLIES !== "0";
const RUNS = SIZES ? SIZES.flatMap((n) => ALL_RUNS.filter((r) => r.streams === n)) : ALL_RUNS;
if (RUNS.length === 0 || (SIZES && RUNS.length !== SIZES.length)) throw new Error(`SKEIN_BENCH_PACED_SIZES=${process.env.SKEIN_BENCH_PACED_SIZES}: choose among ${ALL_RUNS.map((r) => r.streams).join(", ")}`);
const MAX_STREAMS = Math.max(...RUNS.map((r) => r.streams));

interface Side {
  readonly result: StreamsResult;
  /** Server, provider, client CPU (ms). */
  readonly cpu: readonly number[];
  readonly load: number;
  readonly errors: number;
  /** Server CPU (ms) by thread name over the measurement, user and system. */
  readonly threads: ReadonlyArray<{ name: string; user: number; sys: number }>;
  /** Connections the provider accepted during the measurement (the server's connects to it). */
  readonly connects: number;
}

/**
 * SKEIN_BENCH_PACED_ROUNDS (default 3): skein and the relay alternate this
 * many times at each size, and each side's rounds are pooled (CPU summed over
 * events summed): one pair of measurements moved by ±20 % with the machine.
 */
const ROUNDS = Number(process.env.SKEIN_BENCH_PACED_ROUNDS || 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`SKEIN_BENCH_PACED_ROUNDS=${process.env.SKEIN_BENCH_PACED_ROUNDS}: a whole number ≥ 1`);
/**
 * SKEIN_BENCH_PACED_WARMUP_ROUNDS (default 1): rounds each side runs at a size
 * before the measured ones, reported apart. V8 goes on optimising a server's
 * code for tens of thousands of events after it first runs at a size (with
 * --single-threaded-gc the compiler threads' CPU fell 5.0 → 3.4 → 1.9 → 2.6
 * → 0.5 µs per event over skein's first five rounds at 200), skein's larger
 * code longer than the relay's; a service that runs for hours pays that once.
 */
const WARMUP_ROUNDS = Number(process.env.SKEIN_BENCH_PACED_WARMUP_ROUNDS ?? 1);
if (!Number.isInteger(WARMUP_ROUNDS) || WARMUP_ROUNDS < 0) throw new Error(`SKEIN_BENCH_PACED_WARMUP_ROUNDS=${process.env.SKEIN_BENCH_PACED_WARMUP_ROUNDS}: a whole number ≥ 0`);

/** One side's rounds as one measurement: CPU, events, wall time and connections summed, replies together, the first round's load. */
function pooled(rounds: readonly Side[]): Side {
  const threads = new Map<string, { name: string; user: number; sys: number }>();
  for (const r of rounds) for (const t of r.threads) {
    const sum = threads.get(t.name) ?? { name: t.name, user: 0, sys: 0 };
    sum.user += t.user;
    sum.sys += t.sys;
    threads.set(t.name, sum);
  }
  return {
    result: {
      events: rounds.reduce((n, r) => n + r.result.events, 0),
      wallMs: rounds.reduce((n, r) => n + r.result.wallMs, 0),
      replies: rounds.flatMap((r) => r.result.replies),
      deltaBytes: rounds[0]!.result.deltaBytes,
    },
    cpu: rounds[0]!.cpu.map((_, i) => rounds.reduce((n, r) => n + r.cpu[i]!, 0)),
    load: rounds[0]!.load,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    threads: [...threads.values()],
    connects: rounds.reduce((n, r) => n + r.connects, 0),
  };
}

/** Server threads as the table groups them: Node's main thread (user and system apart), the rest (Node 20 names them all "node"). */
const THREAD_ROWS: ReadonlyArray<{ label: string; match: (name: string) => "user" | "sys" | "both" | undefined }> = [
  { label: "main thread, user", match: (n) => (n === "main" ? "user" : undefined) },
  { label: "main thread, system", match: (n) => (n === "main" ? "sys" : undefined) },
  { label: "other threads (V8's GC and compiler, libuv's pool)", match: (n) => (n !== "main" ? "both" : undefined) },
];

function byThread(s: Side, match: (name: string) => "user" | "sys" | "both" | undefined): string {
  let ms = 0;
  for (const t of s.threads) {
    const m = match(t.name);
    if (m === "user" || m === "both") ms += t.user;
    if (m === "sys" || m === "both") ms += t.sys;
  }
  return ((ms * 1000) / s.result.events).toFixed(1);
}

/** One size's (or the first replies') measurement: the warm-up rounds apart, the measured ones pooled. */
interface PacedRow {
  readonly label: string;
  readonly streams: number;
  /** Replies per stream, over the measured rounds. */
  readonly replies: number;
  readonly skein: Side;
  readonly relay: Side;
  readonly warmup: { readonly skein: Side; readonly relay: Side } | undefined;
}

function pooledRow(label: string, streams: number, replies: number, skeinRounds: readonly Side[], relayRounds: readonly Side[]): PacedRow {
  const warm = (rounds: readonly Side[]) => pooled(rounds.slice(0, WARMUP_ROUNDS));
  // Errors count in every round, warm-up included.
  const measured = (rounds: readonly Side[]): Side => ({ ...pooled(rounds.slice(WARMUP_ROUNDS)), errors: rounds.reduce((n, r) => n + r.errors, 0) });
  return {
    label,
    streams,
    replies: replies * ROUNDS,
    skein: measured(skeinRounds),
    relay: measured(relayRounds),
    warmup: WARMUP_ROUNDS > 0 ? { skein: warm(skeinRounds), relay: warm(relayRounds) } : undefined,
  };
}

export async function run(): Promise<Table[]> {
  const firstRepliesSessions = FIRST_REPLIES ? FIRST_REPLIES_STREAMS * (WARMUP_ROUNDS + ROUNDS) : 0;
  const rig = await startReplyRig({ SKEIN_MAX_LIVE_AGENTS: String(MAX_STREAMS + firstRepliesSessions) });
  const started: BenchChild[] = [];
  try {
    const relay = await forkChild("relay-server");
    started.push(relay);
    await relay.call("provider", { baseURL: await rig.provider.call<string>("baseURL") });
    const relayClient = await forkChild("reply-client");
    started.push(relayClient);
    await relayClient.call("connect", { address: await relay.call<string>("address") });

    process.stderr.write(`[bench]   paced: creating ${MAX_STREAMS} sessions, warming up…\n`);
    const ids = await rig.client.call<string[]>("create", { n: MAX_STREAMS, width: 16 });
    // Every session's agent loaded (a live agent each) and past the replies that ask for a description; both servers' JIT warm.
    await rig.client.call("streams", { sessionIds: ids, replies: 3, text: "deltas=3 delay=0" });
    await relayClient.call("streams", { sessionIds: ids, replies: 3, text: "deltas=3 delay=0" });
    await rig.client.call("streams", { sessionIds: ids.slice(0, 20), replies: 2, text: SCRIPT });
    await relayClient.call("streams", { sessionIds: ids.slice(0, 20), replies: 2, text: SCRIPT });
    const serverPid = rig.service.proc.pid!;
    const measure = async (server: number, client: BenchChild, replies: number, finishes: boolean, sessionIds: readonly string[]): Promise<Side> => {
      const load = loadavg()[0]!;
      const threadsBefore = cpuByThread(server);
      const acceptedBefore = (await rig.provider.call<{ accepted: number }>("stats")).accepted;
      const { result, cpu } = await cpuDuring([server, rig.provider.pid, client.pid], () =>
        client.call<StreamsResult>("streams", { sessionIds, replies, text: SCRIPT }),
      );
      const threads = [...cpuByThread(server)].map(([name, t]) => {
        const b = threadsBefore.get(name) ?? { user: 0, sys: 0 };
        return { name, user: t.user - b.user, sys: t.sys - b.sys };
      });
      const connects = (await rig.provider.call<{ accepted: number }>("stats")).accepted - acceptedBefore;
      await rig.provider.call("forget");
      const errors = result.replies.filter((x) => x.error !== undefined || (finishes && x.finish !== "FINISH_REASON_STOP")).length;
      return { result, cpu, load, errors, threads, connects };
    };
    /** Skein and the relay alternating: the warm-up rounds, then the measured ones; `sessionsOf` picks each round's sessions (default: the first `streams`). */
    const alternate = async (label: string, streams: number, replies: number, sessionsOf = (_round: number) => ids.slice(0, streams)): Promise<PacedRow> => {
      process.stderr.write(`[bench]   paced: ${label} (concurrent replies), ${WARMUP_ROUNDS} + ${ROUNDS} rounds…\n`);
      const skeinRounds: Side[] = [];
      const relayRounds: Side[] = [];
      for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
        skeinRounds.push(await measure(serverPid, rig.client, replies, true, sessionsOf(round)));
        relayRounds.push(await measure(relay.pid, relayClient, replies, false, sessionsOf(round)));
      }
      return pooledRow(label, streams, replies, skeinRounds, relayRounds);
    };
    const rows: PacedRow[] = [];
    for (const { streams, replies } of RUNS) rows.push(await alternate(streams.toLocaleString("en-US"), streams, replies));
    // Memory at the largest size, before the first replies' sessions are made.
    const skeinMem = memory(serverPid);
    const relayMem = memory(relay.pid);
    let firstReplies: PacedRow | undefined;
    if (firstRepliesSessions > 0) {
      // Sessions replied to once (their agents live), so their next two replies ask for a description.
      const fresh = await rig.client.call<string[]>("create", { n: firstRepliesSessions, width: 16 });
      await rig.client.call("streams", { sessionIds: fresh, replies: 1, text: "deltas=3 delay=0" });
      const sessionsOf = (round: number) => fresh.slice(round * FIRST_REPLIES_STREAMS, (round + 1) * FIRST_REPLIES_STREAMS);
      firstReplies = await alternate(`${FIRST_REPLIES_STREAMS}, a session's 2nd and 3rd replies`, FIRST_REPLIES_STREAMS, 2, sessionsOf);
    }

    const us = (s: Side, i: number) => (s.cpu[i]! * 1000) / s.result.events;
    const rate = (s: Side) => s.result.events / (s.result.wallMs / 1000);
    const first = (s: Side, key: "firstAt" | "firstDeltaAt", q: number) =>
      quantile(s.result.replies.flatMap((x) => (x[key] === undefined ? [] : [x[key]! - x.sentAt])), q);
    const load = (r: { skein: Side; relay: Side }) => `${r.skein.load.toFixed(1)} / ${r.relay.load.toFixed(1)}`;
    const goalRows = firstReplies ? [...rows, firstReplies] : rows;
    const ratio = (r: { skein: Side; relay: Side }) => `${(us(r.skein, 0) / us(r.relay, 0)).toFixed(2)}×`;
    const last = rows.at(-1)!;
    const perReply = (s: Side) => (s.result.events / s.result.replies.length).toFixed(0);
    return [
      {
        title: "paced: server CPU per event, deltas 10–20 ms apart (skein session service vs the minimal relay)",
        columns: ["concurrent replies", "replies", "skein µs/event", "relay µs/message", "skein / relay", "errors (skein / relay)", "load average 1 min (skein / relay run)"],
        rows: goalRows.map((r) => [r.label, r.streams * r.replies, us(r.skein, 0), us(r.relay, 0), ratio(r), `${r.skein.errors} / ${r.relay.errors}`, load(r)]),
        notes: [
          `each reply: ${DELTAS} one-character text deltas, the provider pausing 10 ms + a random 0–10 ms before each (OpenAI SSE, one write per event); skein streams ${perReply(rows[0]!.skein)} events per reply (user message, deltas, assistant message, finished …), the relay ${perReply(rows[0]!.relay)} messages (one per delta)`,
          `CPU = utime + stime of the whole server process from /proc/<pid>/stat over the measurement (10 ms ticks), divided by the events its client received; ${ROUNDS} alternating rounds per size, pooled (replies = all rounds)`,
          ...(WARMUP_ROUNDS > 0
            ? [`before them, ${WARMUP_ROUNDS} warm-up round(s) per side at each size, not pooled but their errors counted (V8 still optimising the servers' code for that load; SKEIN_BENCH_PACED_WARMUP_ROUNDS): ${goalRows.map((r) => `${r.label}: ${r.warmup ? ratio(r.warmup) : "–"}`).join("; ")}`]
            : []),
          "relay = procs/relay-server.ts: grpc-js server stream, node:http to the provider, SSE framing and JSON decoding, one write per delta with backpressure; no persistence, no agent loop",
          `${MAX_STREAMS.toLocaleString("en-US")} sessions created and each replied to three times before (every agent live, SKEIN_MAX_LIVE_AGENTS covering every session): the rows by size measure replies of conversations past the first three, the replies for which skein (as goose) also asks the model for the session's description; skein and the relay alternate at each size`,
          ...(firstReplies
            ? [`"a session's 2nd and 3rd replies": ${FIRST_REPLIES_STREAMS} sessions replied to once before, per round sessions of its own; skein also asks the model for each session's description (goose's second model call beside the reply; the relay has none)`]
            : []),
          "goal (issue 25): skein ≤ 1.3× the relay at 20, 200 and 1,000",
        ],
      },
      {
        title: `paced: ${last.streams.toLocaleString("en-US")} concurrent paced replies`,
        columns: ["measure", "skein", "relay"],
        rows: [
          ["errors", last.skein.errors, last.relay.errors],
          ["events/s at the client", Math.round(rate(last.skein)), Math.round(rate(last.relay))],
          ["events/s, skein / relay", `${((rate(last.skein) / rate(last.relay)) * 100).toFixed(0)} %`, ""],
          ["wall time, all rounds (s)", last.skein.result.wallMs / 1000, last.relay.result.wallMs / 1000],
          ["time to first event p50 / p99 (ms)", `${first(last.skein, "firstAt", 0.5).toFixed(0)} / ${first(last.skein, "firstAt", 0.99).toFixed(0)}`, `${first(last.relay, "firstAt", 0.5).toFixed(0)} / ${first(last.relay, "firstAt", 0.99).toFixed(0)}`],
          ["time to first text delta p50 / p99 (ms)", `${first(last.skein, "firstDeltaAt", 0.5).toFixed(0)} / ${first(last.skein, "firstDeltaAt", 0.99).toFixed(0)}`, `${first(last.relay, "firstDeltaAt", 0.5).toFixed(0)} / ${first(last.relay, "firstDeltaAt", 0.99).toFixed(0)}`],
          ["server CPU (s) / provider / client", last.skein.cpu.map((c) => (c / 1000).toFixed(1)).join(" / "), last.relay.cpu.map((c) => (c / 1000).toFixed(1)).join(" / ")],
          ["server peak RSS, VmHWM (MiB)", skeinMem.peakRss / MiB, relayMem.peakRss / MiB],
          ["server RSS after the last size (MiB)", skeinMem.rss / MiB, relayMem.rss / MiB],
          ["load average (1 min) at the start", last.skein.load, last.relay.load],
        ],
        notes: [
          "skein's first event is the user's message (sent once persisted); the relay's first is the first delta",
          "goal (issue 25): 0 errors, events/s ≥ 90 % of the relay's, p99 time to first event ≤ 1 s, peak RSS reported",
        ],
      },
      {
        title: "paced: where the server's CPU goes, µs per event by thread (user + system)",
        columns: ["concurrent replies", "server", ...THREAD_ROWS.map((t) => t.label), "provider connections opened"],
        rows: rows.flatMap((r) =>
          (["skein", "relay"] as const).map((side) => {
            const s = side === "skein" ? r.skein : r.relay;
            return [r.streams, side, ...THREAD_ROWS.map((t) => byThread(s, t.match)), s.connects];
          }),
        ),
        notes: ["from /proc/<pid>/task/*/stat over each measurement; the other threads are V8's (concurrent GC marking, optimising compiler) and libuv's pool (fs, dns)", "provider connections opened: TCP connections the provider accepted during the measurement"],
      },
      {
        title: "paced: the other processes, CPU µs per event",
        columns: ["concurrent replies", "provider (skein run)", "provider (relay run)", "client (skein run)", "client (relay run)"],
        rows: rows.map((r) => [r.streams, us(r.skein, 1), us(r.relay, 1), us(r.skein, 2), us(r.relay, 2)]),
        notes: ["the provider writes the same deltas in both runs; the client decodes skein's larger event set in the skein run"],
      },
    ];
  } finally {
    for (const c of started.reverse()) await c.stop();
    await rig.stop();
  }
}
