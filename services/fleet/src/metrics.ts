import { metricsRegistry } from "@skein/runtime";
import { Gauge, Histogram } from "prom-client";
import type { ActivityName, AgentSnapshot, AgentStateName } from "./agent.js";

const STATES: readonly AgentStateName[] = ["running", "exited", "stopped", "unknown"];
const ACTIVITIES: readonly ActivityName[] = ["working", "waiting", "idle", "unknown"];

/** Every tmux call, by subcommand: slow tmux is the first thing to look at when starts lag. */
export const tmuxCallSeconds = new Histogram({
  name: "skein_fleet_tmux_call_duration_seconds",
  help: "duration of tmux client calls, by subcommand",
  labelNames: ["subcommand"] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  registers: [metricsRegistry],
});

/** Gauges read from the fleet at scrape time. Call once per process. */
export function registerFleetGauges(fleet: { list(): AgentSnapshot[] }): void {
  countGauge("skein_fleet_agents", "agents known to the fleet service, by state", "state", STATES, () => fleet.list().map((a) => a.state));
  countGauge("skein_fleet_agents_by_activity", "running agents by activity: working, waiting (for a person), idle, unknown", "activity", ACTIVITIES, () =>
    fleet.list().flatMap((a) => (a.state === "running" ? [a.activity] : [])),
  );
  new Gauge({
    name: "skein_fleet_heartbeat_age_seconds",
    help: "seconds since each running agent's heartbeat file was last written",
    labelNames: ["agent"] as const,
    registers: [metricsRegistry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const a of fleet.list()) {
        if (a.state === "running" && a.lastHeartbeatAt) this.set({ agent: a.spec.name }, (now - a.lastHeartbeatAt.getTime()) / 1000);
      }
    },
  });
}

/** A gauge of how many agents have each value of `label` (every value reported, 0 included). */
function countGauge(name: string, help: string, label: string, values: readonly string[], read: () => string[]): void {
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [metricsRegistry],
    collect() {
      const counts = new Map<string, number>(values.map((v) => [v, 0]));
      for (const v of read()) counts.set(v, (counts.get(v) ?? 0) + 1);
      for (const [v, n] of counts) this.set({ [label]: v }, n);
    },
  });
}
