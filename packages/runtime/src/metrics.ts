import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { Logger } from "pino";
import type { CallHooks } from "./call.js";
import { ConfigError } from "./config.js";

/**
 * The process's Prometheus registry. Services add their own gauges to it
 * (`registers: [metricsRegistry]`); the runtime records every call.
 */
export const metricsRegistry = new Registry();
/** Process metrics cost an event-loop monitor and a GC observer: only while metrics are served. */
let defaultMetricsOn = false;

const requests = new Counter({
  name: "skein_grpc_requests_total",
  help: "gRPC calls finished, by method and status code",
  labelNames: ["method", "code"] as const,
  registers: [metricsRegistry],
});
const latency = new Histogram({
  name: "skein_grpc_request_duration_seconds",
  help: "gRPC call duration from start to final status (streams: their whole life)",
  labelNames: ["method"] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
  registers: [metricsRegistry],
});
const streamMessages = new Counter({
  name: "skein_grpc_stream_messages_sent_total",
  help: "messages written to server streams, by method",
  labelNames: ["method"] as const,
  registers: [metricsRegistry],
});

/** Call hooks that feed the gRPC metrics. */
export const grpcMetricsHooks: CallHooks = {
  onCallEnd(method, code, durationMs) {
    requests.inc({ method, code: String(code) });
    latency.observe({ method }, durationMs / 1000);
  },
  onMessageSent(method) {
    streamMessages.inc({ method });
  },
};

/**
 * Serves GET /metrics in Prometheus text format on host:port. Resolves with
 * the bound port and a close function.
 */
export async function serveMetrics(addr: string, service: string, log: Logger): Promise<{ port: number; close: () => Promise<void> }> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new ConfigError(`SKEIN_METRICS_ADDR=${JSON.stringify(addr)} must be host:port`);
  const host = m[1]!.replace(/^\[(.*)\]$/, "$1");
  metricsRegistry.setDefaultLabels({ service });
  if (!defaultMetricsOn) {
    collectDefaultMetrics({ register: metricsRegistry, prefix: "skein_" });
    defaultMetricsOn = true;
  }
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    metricsRegistry.metrics().then(
      (body) => res.writeHead(200, { "content-type": metricsRegistry.contentType }).end(body),
      (err: unknown) => {
        log.error({ err }, "metrics collection failed");
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(m[2]), host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  log.info({ metricsAddr: addr, port }, "metrics listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
