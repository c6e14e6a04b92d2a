import type { Table } from "./table.js";

/** The parts of a V8 .cpuprofile (node --cpu-prof) this summary reads. */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  /** Microseconds on the process's monotonic clock (CLOCK_MONOTONIC on Linux). */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a frame's time goes, in the words of issue 12's overheads. */
const GROUPS: ReadonlyArray<[string, (url: string, fn: string) => boolean]> = [
  ["GC", (_u, f) => f === "(garbage collector)"],
  ["(program): native, not attributed to JS", (_u, f) => f === "(program)"],
  ["openai SDK: SSE line decoding", (u) => /node_modules\/openai\/.*(streaming|decoders|line)/.test(u)],
  ["openai SDK: other layers", (u) => u.includes("node_modules/openai/")],
  ["HTTP client (undici / fetch)", (u) => u.includes("undici") || u.includes("node:internal/deps/undici")],
  ["grpc-js", (u) => u.includes("@grpc/grpc-js")],
  ["http2 (node core, under grpc-js)", (u) => /node:(internal\/)?http2/.test(u)],
  ["protobuf encode (ts-proto, @bufbuild wire)", (u) => u.includes("packages/proto/") || u.includes("@bufbuild/protobuf")],
  ["logging (pino)", (u) => /pino|sonic-boom|thread-stream/.test(u) || u.includes("runtime/dist/logger")],
  ["metrics (prom-client, call hooks)", (u) => u.includes("prom-client") || /(runtime|session)\/dist\/metrics/.test(u)],
  ["store writes (session store)", (u) => u.includes("goose-sessions/dist/")],
  ["event log / broadcaster", (u) => u.includes("session/dist/runs/event-log") || u.includes("runtime/dist/broadcast")],
  ["skein runs (run manager, run)", (u) => u.includes("session/dist/runs/")],
  ["skein agent loop", (u) => u.includes("session/dist/agent/") || u.includes("session/dist/agents/")],
  ["skein provider adapter (guarded stream, openai.ts)", (u) => u.includes("session/dist/providers/")],
  ["skein runtime (call, stream writer, server stream)", (u) => u.includes("runtime/dist/")],
  ["skein session service: other", (u) => u.includes("services/session/dist/")],
  ["AbortController / EventTarget (abort listeners, DOMException)", (u) => /node:internal\/(event_target|abort_controller|per_context\/domexception|worker\/js_transferable)/.test(u)],
  ["node core: streams, events, microtasks, timers", (u) => /node:(internal\/)?(streams|stream|events|process\/task_queues|timers|async_hooks|internal\/async_hooks|webstreams)/.test(u) || u.includes("node:internal/webstreams")],
  ["node core: net, fs, buffers", (u) => /node:(internal\/)?(net|fs|buffer|stream_base_commons|util|url|encoding)/.test(u)],
  ["native builtins (runMicrotasks, JSON.parse, writeBuffer, …)", (u) => u === ""],
];

export function groupOf(url: string, fn: string): string {
  return GROUPS.find(([, match]) => match(url, fn))?.[0] ?? "other";
}

const short = (url: string) => url.replace(/^file:\/\/.*?\/node_modules\//, "").replace(/^file:\/\/.*?\/(services|packages)\//, "$1/");

/**
 * Self time by group, top functions by self time, and inclusive time of
 * skein's own functions, counting only samples inside [fromUs, toUs].
 */
export function summarise(p: CpuProfile, fromUs: number, toUs: number): Table[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    // A sample's time is the gap to the next one.
    const dt = (p.timeDeltas[i + 1] ?? 0);
    if (t < fromUs || t > toUs) continue;
    const fn = byId.get(p.samples[i]!)!.callFrame.functionName;
    if (fn === "(idle)") continue;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const key = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || "(anonymous)"} ${short(f.url)}:${f.lineNumber + 1}`;
  };
  const groups = new Map<string, number>();
  const fns = new Map<string, { us: number; group: string }>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const g = groupOf(f.url, f.functionName);
    groups.set(g, (groups.get(g) ?? 0) + us);
    const k = key(id);
    fns.set(k, { us: (fns.get(k)?.us ?? 0) + us, group: g });
    // Inclusive time of skein's own frames: each counted once per stack.
    const seen = new Set<string>();
    for (let a: number | undefined = id; a !== undefined; a = parent.get(a)) {
      const af = byId.get(a)!.callFrame;
      if (!/(services\/session|packages\/runtime)\/dist\//.test(af.url)) continue;
      const ak = key(a);
      if (seen.has(ak)) continue;
      seen.add(ak);
      inclusive.set(ak, (inclusive.get(ak) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1)} %`;
  const ms = (us: number) => us / 1000;
  const sorted = <V>(m: Map<string, V>, us: (v: V) => number) => [...m].sort((a, b) => us(b[1]) - us(a[1]));
  return [
    {
      title: "reply-profile: service CPU by group (self time)",
      columns: ["group", "ms", "share"],
      rows: sorted(groups, (v) => v).map(([g, us]) => [g, ms(us), pct(us)]),
      notes: [`${ms(total).toFixed(0)} ms of non-idle samples in the measured window`],
    },
    {
      title: "reply-profile: top 30 functions by self time",
      columns: ["function (file:line)", "group", "ms", "share"],
      rows: sorted(fns, (v) => v.us).slice(0, 30).map(([k, v]) => [k, v.group, ms(v.us), pct(v.us)]),
    },
    {
      title: "reply-profile: skein's own functions by inclusive time (call paths)",
      columns: ["function (file:line)", "ms", "share"],
      rows: sorted(inclusive, (v) => v).slice(0, 30).map(([k, us]) => [k, ms(us), pct(us)]),
    },
  ];
}
