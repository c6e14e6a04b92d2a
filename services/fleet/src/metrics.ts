import { metricsRegistry } from "@skein/runtime";
import { Gauge, Histogram } from "prom-client";
import type { AgentSnapshot, AgentStateName } from "./agent.js";

const STATES: readonly AgentStateName[] = ["running", "exited", "stopped", "unknown"];

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
  new Gauge({
    name: "skein_fleet_agents",
    help: "agents known to the fleet service, by state",
    labelNames: ["state"] as const,
    registers: [metricsRegistry],
    collect() {
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const a of fleet.list()) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
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
