import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { Logger } from "pino";
import type { CallHooks } from "./call.js";
import { parseListenAddress } from "./address.js";
import { isLoopbackAddress } from "./auth.js";
import { ConfigError, envBool, envOptional } from "./config.js";
import { ListenError } from "./listen-error.js";
import type { Env } from "@skein/host";

/** Where one service serves metrics, and which variable said so. */
export interface MetricsSettings {
  readonly variable: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
}

/** Spelled out for the services skein ships, so every variable read appears in the source. */
const OWN_METRICS_VAR: Record<string, string> = {
  SKEIN_SESSION_ADDR: "SKEIN_SESSION_METRICS_ADDR",
  SKEIN_FLEET_ADDR: "SKEIN_FLEET_METRICS_ADDR",
};

/**
 * Each service has its own metrics variable (SKEIN_SESSION_METRICS_ADDR for a
 * service listening on SKEIN_SESSION_ADDR); SKEIN_METRICS_ADDR serves a
 * service that has none. The endpoint has no auth, so it binds loopback only
 * unless SKEIN_METRICS_PUBLIC=true.
 */
export function metricsSettings(addrVar: string, env: Env = process.env): MetricsSettings | undefined {
  const own = OWN_METRICS_VAR[addrVar] ?? addrVar.replace(/_ADDR$/, "_METRICS_ADDR");
  const variable = envOptional(own, env) !== undefined ? own : "SKEIN_METRICS_ADDR";
  const address = envOptional(variable, env);
  const allowRemote = envBool("SKEIN_METRICS_PUBLIC", false, env);
  if (address === undefined) return undefined;
  const parsed = parseListenAddress(variable, address);
  if (parsed.kind !== "tcp") throw new ConfigError(`${variable}=${JSON.stringify(address)} must be host:port (metrics are served over HTTP on TCP)`);
  if (!allowRemote && !isLoopbackAddress(address)) {
    throw new ConfigError(
      `${variable}=${address} is not a loopback address: metrics have no auth, so they listen on 127.0.0.1/::1 unless SKEIN_METRICS_PUBLIC=true`,
    );
  }
  return { variable, address, host: parsed.host, port: parsed.port };
}

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
/**
 * Messages sent per method since the last scrape. A stream counts into its
 * method's cell with a plain increment (prom-client's `inc` hashes the labels:
 * measurable at tens of thousands of messages a second); a scrape folds the
 * cells into the counter.
 */
const unscrapedMessages = new Map<string, { count: number }>();
// Registered with the registry, which is all it needs: its collect() fills it.
new Counter({
  name: "skein_grpc_stream_messages_sent_total",
  help: "messages written to server streams, by method",
  labelNames: ["method"] as const,
  registers: [metricsRegistry],
  collect() {
    for (const [method, cell] of unscrapedMessages) {
      if (cell.count === 0) continue;
      this.inc({ method }, cell.count);
      cell.count = 0;
    }
  },
});

/** Call hooks that feed the gRPC metrics. */
export const grpcMetricsHooks: CallHooks = {
  onCallEnd(method, code, durationMs) {
    requests.inc({ method, code: String(code) });
    latency.observe({ method }, durationMs / 1000);
  },
  messageCounter(method) {
    let cell = unscrapedMessages.get(method);
    if (!cell) unscrapedMessages.set(method, (cell = { count: 0 }));
    return cell;
  },
};

/**
 * Serves GET /metrics in Prometheus text format on host:port. Resolves with
 * the bound port and a close function.
 */
export async function serveMetrics(
  settings: MetricsSettings,
  service: string,
  log: Logger,
): Promise<{ port: number; address: string; close: () => Promise<void> }> {
  const { host } = settings;
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
    server.once("error", (err: NodeJS.ErrnoException) => reject(ListenError.fromNode(settings.variable, settings.address, err)));
    server.listen(settings.port, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  log.info({ metricsAddr: address, variable: settings.variable, port }, "metrics listening");
  return {
    port,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
