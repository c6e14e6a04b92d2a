import { metricSample, scrapeMetrics } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

it("exports agents by state, heartbeat age and tmux call latency", async () => {
  h = new FleetHarness();
  h.extraEnv.SKEIN_METRICS_ADDR = "127.0.0.1:0";
  await h.start();
  await h.startAgent({ name: "runs", command: "sleep 300", heartbeatIntervalSeconds: 1 });
  await h.startAgent({ name: "ends", command: "sh -c 'sleep 0.3; exit 3'" });
  await waitFor("the short agent to be seen exited", async () => (await h.getAgent("ends")).exitStatus === 3);
  await waitFor("a first heartbeat", async () => (await h.getAgent("runs")).lastHeartbeatAt !== undefined);

  const { status, text } = await scrapeMetrics(h.svc!);
  expect(status).toBe(200);
  expect(metricSample(text, "skein_fleet_agents", { state: "running", service: "fleet" })).toBe(1);
  expect(metricSample(text, "skein_fleet_agents", { state: "exited" })).toBe(1);
  expect(metricSample(text, "skein_fleet_agents", { state: "stopped" })).toBe(0);
  const age = metricSample(text, "skein_fleet_heartbeat_age_seconds", { agent: "runs" });
  expect(age).toBeGreaterThanOrEqual(0);
  expect(metricSample(text, "skein_fleet_heartbeat_age_seconds", { agent: "ends" })).toBeUndefined();
  expect(metricSample(text, "skein_fleet_tmux_call_duration_seconds_count", { subcommand: "new-session" })).toBe(2);
  expect(metricSample(text, "skein_grpc_requests_total", { method: "/skein.fleet.v1.FleetService/StartAgent", code: "0" })).toBe(2);
});
