import { health } from "@skein/proto";
import { call, closeClients, connect, metricSample, scrapeMetrics, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";

let svc: ServiceProcess | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop();
  svc = undefined;
});

async function scrape(s: ServiceProcess): Promise<string> {
  const r = await scrapeMetrics(s);
  expect(r.status).toBe(200);
  expect(r.contentType).toContain("text/plain");
  return r.text;
}

it("serves Prometheus metrics of every call when SKEIN_METRICS_ADDR is set", async () => {
  svc = await startService("fleet", { SKEIN_METRICS_ADDR: "127.0.0.1:0" });
  const c = connect(health.HealthClient, svc.address);
  await call(c, c.check, { service: "" });
  await call(c, c.check, { service: "" });
  const text = await scrape(svc);
  const check = { method: "/grpc.health.v1.Health/Check", service: "fleet" };
  expect(metricSample(text, "skein_grpc_requests_total", { ...check, code: "0" })).toBe(2);
  expect(metricSample(text, "skein_grpc_request_duration_seconds_count", check)).toBe(2);
  expect(text).toContain("skein_process_resident_memory_bytes");
});

it("counts messages written to server streams", async () => {
  svc = await startService("session", { SKEIN_METRICS_ADDR: "127.0.0.1:0" });
  const c = connect(health.HealthClient, svc.address);
  const stream = c.watch({ service: "" });
  await new Promise((resolve) => stream.once("data", resolve));
  stream.cancel();
  await new Promise((resolve) => stream.once("error", resolve));
  const text = await scrape(svc);
  expect(metricSample(text, "skein_grpc_stream_messages_sent_total", { method: "/grpc.health.v1.Health/Watch", service: "session" })).toBe(1);
});

it("serves nothing when SKEIN_METRICS_ADDR is unset", async () => {
  svc = await startService("fleet");
  expect(svc.logs.some((l) => l.msg === "metrics listening")).toBe(false);
});

it("each service has its own metrics variable, which wins over SKEIN_METRICS_ADDR", async () => {
  svc = await startService("fleet", { SKEIN_FLEET_METRICS_ADDR: "127.0.0.1:0", SKEIN_METRICS_ADDR: "127.0.0.1:1" });
  const line = await svc.waitForLog((l) => l.msg === "metrics listening");
  expect(line.variable).toBe("SKEIN_FLEET_METRICS_ADDR");
  expect(metricSample(await scrape(svc), "skein_grpc_requests_total")).toBeUndefined();
});

it("listens beyond loopback only when SKEIN_METRICS_PUBLIC=true", async () => {
  svc = await startService("session", { SKEIN_SESSION_METRICS_ADDR: "0.0.0.0:0", SKEIN_METRICS_PUBLIC: "true" });
  const line = await svc.waitForLog((l) => l.msg === "metrics listening");
  expect(line.metricsAddr).toMatch(/^0\.0\.0\.0:\d+$/);
  expect((await scrapeMetrics(svc)).status).toBe(200);
});
