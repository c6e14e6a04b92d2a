import { formatTable, type Table } from "./table.js";

type Section = { what: string; load: () => Promise<{ run: () => Promise<Table[]> }> };

/** Each section is one module with a run() that measures and returns its tables. */
const sections: Record<string, Section> = {
  fleet: { what: "fleet service: start/stop, heartbeats, capture (tmux)", load: () => import("./fleet.js") },
  session: { what: "session service: replies, hang-ups, heap after many replies", load: () => import("./session.js") },
  "session-store": { what: "goose SQLite vs JSONL store: message writes, replies per second", load: () => import("./session-store.js") },
  "session-pg": { what: "PostgreSQL replicas: cluster primitives on a throw-away cluster", load: () => import("./session-pg.js") },
  "session-soak": { what: "live-agent bounds: many sessions with stdio MCP extensions", load: () => import("./session-soak.js") },
  sse: { what: "SSE decoder vs the OpenAI SDK's parser", load: () => import("./sse.js") },
  // Issue 12: every server in its own process, measured from outside.
  "reply-cpu": { what: "server CPU per streamed event, against a bare grpc-js stream", load: () => import("./reply-cpu.js") },
  "first-event": { what: "time from Reply to its first event", load: () => import("./first-event.js") },
  "concurrent-1000": { what: "1,000 Reply streams at once", load: () => import("./concurrent-1000.js") },
  // Issue 25: replies paced as models stream, against the minimal relay.
  paced: { what: "paced replies (deltas 10–20 ms apart) at 20/200/1,000 at once, against the minimal relay", load: () => import("./paced.js") },
  soak: { what: "heap, RSS and open files under mixed traffic (SKEIN_BENCH_SOAK_MINUTES)", load: () => import("./soak.js") },
  "reply-profile": { what: "CPU profile of one reply stream (only when named)", load: () => import("./reply-profile.js") },
};
/** Diagnostics that run only when named (they write a profile file). */
const onDemand = new Set(["reply-profile"]);

// Stopped by a signal (the runner alone, not its process group), exit through process.exit: testkit's exit hook then
// kills the services the sections started and removes their homes, which a signal's default action would leave running.
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  const width = Math.max(...Object.keys(sections).map((n) => n.length));
  process.stdout.write(
    [
      "usage: npm run bench [-- SECTION...]   (no section: all but reply-profile)",
      "",
      ...Object.entries(sections).map(([name, s]) => `  ${name.padEnd(width)}  ${s.what}`),
      "",
    ].join("\n"),
  );
  process.exit(0);
}
const unknown = args.filter((a) => !(a in sections));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown section ${unknown.map((u) => JSON.stringify(u)).join(", ")}; sections: ${Object.keys(sections).join(", ")}\n`);
  process.exit(2);
}

for (const [name, { load }] of Object.entries(sections)) {
  if (args.length ? !args.includes(name) : onDemand.has(name)) continue;
  process.stderr.write(`[bench] ${name}…\n`);
  const t0 = performance.now();
  const { run } = await load();
  for (const t of await run()) process.stdout.write(`${formatTable(t)}\n\n`);
  // The whole bench must stay under 10 minutes: each section says what it took.
  process.stderr.write(`[bench] ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}
