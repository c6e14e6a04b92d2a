import { tmpdir } from "node:os";
import type { StreamsResult } from "./procs/one-reply.js";
import { startReplyRig } from "./bench-service.js";
import { cpuDuring, memory } from "./proc-usage.js";
import { freePort, sampleAtPeak } from "./service-memory.js";
import { quantile } from "./stats.js";
import { MiB, type Table } from "./table.js";

/**
 * Issue 12 goal 4: 1,000 Reply streams at once, one per session, 200 text
 * deltas each, on the service in its own process: errors, time to first
 * event, the service's peak RSS (VmHWM) from /proc.
 */
const STREAMS = 1_000;
const SCRIPT = "deltas=200 delay=0";
/** The default SKEIN_MAX_LIVE_AGENTS (100) would refuse most of them: one live agent per replying session. */
const MAX_LIVE_AGENTS = String(STREAMS);

export async function run(): Promise<Table[]> {
  const metricsPort = await freePort();
  // SKEIN_BENCH_HEAP_SNAPSHOT=1: the service writes one heap snapshot (into SKEIN_BENCH_HEAP_SNAPSHOT_DIR or the temp dir) near its peak (see snapshotAtPeak).
  const snapshotDir = process.env.SKEIN_BENCH_HEAP_SNAPSHOT === "1" ? (process.env.SKEIN_BENCH_HEAP_SNAPSHOT_DIR ?? tmpdir()) : undefined;
  const rig = await startReplyRig(
    { SKEIN_MAX_LIVE_AGENTS: MAX_LIVE_AGENTS, SKEIN_SESSION_METRICS_ADDR: `127.0.0.1:${metricsPort}` },
    snapshotDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshotDir}`] : [],
  );
  const pid = rig.service.proc.pid!;
  try {
    const [warmId] = await rig.client.call<string[]>("create", { n: 1, width: 1 });
    await rig.client.call("streams", { sessionIds: [warmId], replies: 5, text: SCRIPT });
    const ids = await rig.client.call<string[]>("create", { n: STREAMS, width: 16 });
    const before = memory(pid);
    const sampler = sampleAtPeak(`http://127.0.0.1:${metricsPort}/metrics`, 500);
    const snapshot = snapshotDir ? snapshotAtPeak(pid, before.rss) : undefined;
    const { result: r, cpu } = await cpuDuring([pid, rig.provider.pid, rig.client.pid], () =>
      rig.client.call<StreamsResult>("streams", { sessionIds: ids, replies: 1, text: SCRIPT, tag: true }),
    );
    const timings = await rig.provider.call<Array<{ arrivedAt: number; firstByteAt: number } | null>>("timings", r.replies.map((x) => x.tag));
    const toProvider = r.replies.flatMap((x, i) => (timings[i] ? [timings[i]!.arrivedAt - x.sentAt] : []));
    const fromProvider = r.replies.flatMap((x, i) => (timings[i] && x.firstDeltaAt !== undefined ? [x.firstDeltaAt - timings[i]!.firstByteAt] : []));
    const ttfd = r.replies.filter((x) => x.firstDeltaAt !== undefined).map((x) => x.firstDeltaAt! - x.sentAt);
    const after = memory(pid);
    const peak = await sampler.stop();
    snapshot?.stop();
    const failed = r.replies.filter((x) => x.error !== undefined || x.finish !== "FINISH_REASON_STOP");
    const reasons = new Map<string, number>();
    for (const f of failed) {
      const why = f.error ?? `finished ${f.finish}${f.errorEvent ? ` after error ${f.errorEvent}` : ""}`;
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    const ttfe = r.replies.filter((x) => x.firstAt !== undefined).map((x) => x.firstAt! - x.sentAt);
    const lastEnd = Math.max(...r.replies.map((x) => x.endAt));
    return [
      {
        title: `concurrent-1000: ${STREAMS.toLocaleString("en-US")} Reply streams at once (one per session, 200 deltas each)`,
        columns: ["measure", "value"],
        rows: [
          ["replies finished with STOP", r.replies.length - failed.length],
          ["errors (failed calls or other finish reasons)", failed.length],
          ...[...reasons].slice(0, 5).map(([why, n]): [string, number] => [`  ${why.slice(0, 120)}`, n]),
          ["events received", r.events],
          ["time to first event p50 (ms)", quantile(ttfe, 0.5)],
          ["time to first event p99 (ms)", quantile(ttfe, 0.99)],
          ["time to first event max (ms)", Math.max(...ttfe)],
          ["time to first text delta p50 / p99 (ms)", `${quantile(ttfd, 0.5).toFixed(0)} / ${quantile(ttfd, 0.99).toFixed(0)}`],
          ["  of which Reply sent → provider request arrives, p50 / p99 (ms)", `${quantile(toProvider, 0.5).toFixed(0)} / ${quantile(toProvider, 0.99).toFixed(0)}`],
          ["  of which provider first byte → first text delta, p50 / p99 (ms)", `${quantile(fromProvider, 0.5).toFixed(0)} / ${quantile(fromProvider, 0.99).toFixed(0)}`],
          ["wall time until the last stream ended (s)", (lastEnd - Math.min(...r.replies.map((x) => x.sentAt))) / 1000],
          ["CPU (s): service / provider / client", cpu.map((c) => (c / 1000).toFixed(1)).join(" / ")],
          ["service CPU per event (µs)", (cpu[0]! * 1000) / r.events],
          ["service RSS before the streams (MiB)", before.rss / MiB],
          ["service RSS after (MiB)", after.rss / MiB],
          ["service peak RSS, VmHWM (MiB)", after.peakRss / MiB],
          ...(peak
            ? [
                ["at the highest RSS sampled (MiB): RSS / V8 heap used / heap total / external (Buffers)", [peak.rss, peak.heapUsed, peak.heapTotal, peak.external].map((b) => (b / MiB).toFixed(0)).join(" / ")] as [string, string],
              ]
            : []),
        ],
        notes: [
          `SKEIN_MAX_LIVE_AGENTS=${MAX_LIVE_AGENTS} for this scenario (default 100 would refuse replies beyond 100 live agents with RESOURCE_EXHAUSTED)`,
          "the sessions were created beforehand; each stream is its session's first reply, so each loads its agent",
          "first event: the user's message, sent once persisted; first text delta: the model's first piece",
          "provider, service and client in their own processes on a shared 2-core machine",
          "memory at the peak: the service's own prom-client figures, sampled every 500 ms from its metrics endpoint",
        ],
      },
    ];
  } finally {
    await rig.stop();
  }
}

/** Sends SIGUSR2 (a heap snapshot, see --heapsnapshot-signal) once, when RSS has grown by SKEIN_BENCH_HEAP_SNAPSHOT_GROWTH_MIB (default 220) over the start. */
function snapshotAtPeak(pid: number, startRss: number): { stop(): void } {
  const target = startRss + Number(process.env.SKEIN_BENCH_HEAP_SNAPSHOT_GROWTH_MIB ?? 220) * MiB;
  const timer = setInterval(() => {
    if (memory(pid).rss < target) return;
    clearInterval(timer);
    process.kill(pid, "SIGUSR2");
  }, 100);
  return { stop: () => clearInterval(timer) };
}
