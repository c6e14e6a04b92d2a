import { metricsRegistry } from "@skein/runtime";
import { Counter, Gauge } from "prom-client";

/** The live numbers the session metrics read at scrape time. */
export interface SessionMetricsSource {
  readonly runningReplies: () => number;
  readonly liveAgents: () => number;
  readonly extensionProcesses: () => number;
  readonly evictions: () => number;
  readonly streamEvents: () => number;
  readonly pendingApprovals: () => number;
}

let source: SessionMetricsSource | undefined;

/**
 * Registers the session service's metrics on the runtime's registry, once per
 * process (a benchmark may start the service more than once); each scrape reads
 * the most recently bound service.
 */
export function bindSessionMetrics(s: SessionMetricsSource): void {
  const first = source === undefined;
  source = s;
  if (!first) return;
  const read = (f: (s: SessionMetricsSource) => number) => (source ? f(source) : 0);
  const gauge = (name: string, help: string, f: (s: SessionMetricsSource) => number) =>
    new Gauge({
      name,
      help,
      registers: [metricsRegistry],
      collect() {
        this.set(read(f));
      },
    });
  // Counters whose totals live in the domain: a scrape copies the running total.
  const counter = (name: string, help: string, f: (s: SessionMetricsSource) => number) =>
    new Counter({
      name,
      help,
      registers: [metricsRegistry],
      collect() {
        this.reset();
        this.inc(read(f));
      },
    });
  gauge("skein_session_running_replies", "replies running now", (x) => x.runningReplies());
  gauge("skein_pending_approvals", "tool calls of replies paused by this process that wait for ConfirmToolCall", (x) => x.pendingApprovals());
  gauge("skein_session_live_agents", "session agents in memory (with their extension processes)", (x) => x.liveAgents());
  gauge("skein_session_extension_processes", "MCP extension processes of live agents", (x) => x.extensionProcesses());
  counter("skein_session_evictions_total", "live agents evicted (idle timeout or SKEIN_MAX_LIVE_AGENTS)", (x) => x.evictions());
  counter("skein_session_stream_events_total", "run events published (each goes to every Reply/WatchSession listener)", (x) => x.streamEvents());
}
