import { formatTable, type Table } from "./table.js";

/** Each section is one module with a run() that measures and returns its tables. */
const sections: Record<string, () => Promise<{ run: () => Promise<Table[]> }>> = {
  fleet: () => import("./fleet.js"),
  session: () => import("./session.js"),
  "session-store": () => import("./session-store.js"),
  "session-pg": () => import("./session-pg.js"),
  "session-soak": () => import("./session-soak.js"),
  sse: () => import("./sse.js"),
  // Issue 12: every server in its own process, measured from outside.
  "reply-cpu": () => import("./reply-cpu.js"),
  "first-event": () => import("./first-event.js"),
  "concurrent-1000": () => import("./concurrent-1000.js"),
  soak: () => import("./soak.js"),
  "reply-profile": () => import("./reply-profile.js"),
};
/** Diagnostics that run only when named (they write a profile file). */
const onDemand = new Set(["reply-profile"]);

const only = process.argv.slice(2);
for (const [name, load] of Object.entries(sections)) {
  if (only.length ? !only.includes(name) : onDemand.has(name)) continue;
  process.stderr.write(`[bench] ${name}…\n`);
  const t0 = performance.now();
  const { run } = await load();
  for (const t of await run()) process.stdout.write(`${formatTable(t)}\n\n`);
  // The whole bench must stay under 10 minutes: each section says what it took.
  process.stderr.write(`[bench] ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}
