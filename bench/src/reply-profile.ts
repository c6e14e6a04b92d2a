import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StreamsResult } from "./procs/one-reply.js";
import { startReplyRig } from "./bench-service.js";
import { summarise, type CpuProfile } from "./cpuprofile.js";
import { monoMs } from "./procs/commands.js";
import type { Table } from "./table.js";

/**
 * Where the service's CPU goes in reply-cpu's one-stream scenario: the service
 * runs under node --cpu-prof, the profile is cut to the
 * measured window (V8's profile clock is CLOCK_MONOTONIC, as is ours) and
 * summarised. The raw profile is kept for a flame graph (Chrome DevTools,
 * speedscope): SKEIN_BENCH_PROFILE_OUT names the file.
 */
/** SKEIN_BENCH_PROFILE_DELAY_MS paces the provider (ms between events; default 0: each reply in one write). */
const DELAY_MS = Number(process.env.SKEIN_BENCH_PROFILE_DELAY_MS || 0);
/**
 * SKEIN_BENCH_PROFILE_STREAMS=1000 profiles concurrent-1000's scenario instead
 * (that many sessions, one reply of 200 deltas each, all at once).
 */
const STREAMS = Number(process.env.SKEIN_BENCH_PROFILE_STREAMS || 1);
/** SKEIN_BENCH_PROFILE_REPLIES: replies per stream in the measured window (default 1 with many streams, else 4 paced, 20 bursting). */
const REPLIES = Number(process.env.SKEIN_BENCH_PROFILE_REPLIES || (STREAMS > 1 ? 1 : DELAY_MS > 0 ? 4 : 20));
/**
 * Many streams with a paced provider is `paced`'s scenario (issue 25):
 * 100 deltas each, DELAY_MS + a random 0..DELAY_MS apart, e.g.
 * SKEIN_BENCH_PROFILE_STREAMS=200 SKEIN_BENCH_PROFILE_DELAY_MS=10.
 */
const PACED = STREAMS > 1 && DELAY_MS > 0;
/** SKEIN_BENCH_PROFILE_DELTAS: text deltas per paced reply (default 100; a few show what a reply costs apart from its deltas). */
const PACED_DELTAS = Number(process.env.SKEIN_BENCH_PROFILE_DELTAS || 100);
const SCRIPT = PACED ? `deltas=${PACED_DELTAS} delay=${DELAY_MS} jitter=${DELAY_MS}` : `deltas=${STREAMS > 1 ? 200 : 2000} delay=${DELAY_MS}`;
const INTERVAL_US = 200;

export async function run(): Promise<Table[]> {
  const dir = mkdtempSync(join(tmpdir(), "skein-bench-profile-"));
  const out = process.env.SKEIN_BENCH_PROFILE_OUT || join(tmpdir(), "skein-reply-cpu.cpuprofile");
  try {
    const rig = await startReplyRig(STREAMS > 1 ? { SKEIN_MAX_LIVE_AGENTS: String(STREAMS) } : {}, ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${INTERVAL_US}`]);
    let from: number, to: number, events: number;
    try {
      const [warmId] = await rig.client.call<string[]>("create", { n: 1, width: 1 });
      // As in reply-cpu: long enough that V8's optimising compiler is done.
      await rig.client.call("streams", { sessionIds: [warmId], replies: STREAMS > 1 ? 5 : 15, text: SCRIPT });
      const ids = STREAMS > 1 ? await rig.client.call<string[]>("create", { n: STREAMS, width: 16 }) : [warmId];
      // Paced: every agent loaded first, so the profile shows the steady stream, not the first replies' loading.
      if (PACED) await rig.client.call("streams", { sessionIds: ids, replies: 1, text: "deltas=3 delay=0" });
      from = monoMs();
      events = (await rig.client.call<StreamsResult>("streams", { sessionIds: ids, replies: REPLIES, text: SCRIPT })).events;
      to = monoMs();
    } finally {
      // The profile is written when the service exits (SIGTERM → graceful shutdown → exit).
      await rig.stop();
    }
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`the service wrote no .cpuprofile into ${dir}`);
    const text = readFileSync(join(dir, file), "utf8");
    writeFileSync(out, text);
    // For reading the kept profile by hand: the measured window on the profile's clock (µs).
    process.stderr.write(`[bench]   reply-profile: measured window ${Math.round(from * 1000)}–${Math.round(to * 1000)} µs on the profile's clock\n`);
    const tables = summarise(JSON.parse(text) as CpuProfile, from * 1000, to * 1000);
    tables[0] = { ...tables[0]!, notes: [...(tables[0]!.notes ?? []), `${REPLIES} replies × ${events / REPLIES / STREAMS} events, ${STREAMS} stream(s) at once, provider ${PACED ? `pacing events ${DELAY_MS}–${2 * DELAY_MS} ms apart` : DELAY_MS > 0 ? `pacing events ${DELAY_MS} ms apart` : "writing each reply at once"}; sampling every ${INTERVAL_US} µs; raw profile: ${out}`] };
    return tables;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
