import { setMaxListeners } from "node:events";
import { Server, type ChannelOptions } from "@grpc/grpc-js";
import { descriptorSetPath } from "@skein/proto";
import type { Logger } from "pino";
import { untilAborted } from "./abort.js";
import { assertBindAllowed } from "./auth.js";
import type { CallEnvironment } from "./call.js";
import { envInt, envOptional, envString } from "./config.js";
import { serverCredentials } from "./credentials.js";
import { DescriptorIndex } from "./descriptors.js";
import { HealthRegistry } from "./health.js";
import { grpcMetricsHooks, serveMetrics } from "./metrics.js";
import { reflectionServices } from "./reflection.js";
import { bindService, type HostedService } from "./service.js";

type Env = Record<string, string | undefined>;

export interface ShutdownContext {
  /** Aborts when the grace period is over: finish or cancel remaining work now. */
  readonly forced: AbortSignal;
  readonly graceMs: number;
}

export interface ServeOptions {
  /** Address variable and its default, e.g. SKEIN_SESSION_ADDR / 127.0.0.1:50051. */
  readonly addrVar: string;
  readonly defaultAddr: string;
  /** The domain services; health and reflection are added. */
  readonly services: readonly HostedService[];
  readonly log: Logger;
  /** Domain cleanup, run when shutdown begins, alongside the server draining. */
  readonly onShutdown?: (ctx: ShutdownContext) => Promise<void>;
  readonly env?: Env;
}

export interface RunningServer {
  readonly address: string;
  readonly port: number;
  /** Graceful: NOT_SERVING, stop accepting, let calls finish within the grace period, then force. */
  shutdown(reason: string): Promise<void>;
  /** Ends the grace period now. */
  force(): void;
}

const MiB = 1024 * 1024;
/** How long finished calls' connections may take to close on their own at shutdown. */
const FLUSH_WINDOW_MS = 500;

/** The largest message the server sends (SKEIN_MAX_SEND_MESSAGE_BYTES); services size their responses under it. */
export function maxSendMessageBytes(env: Env): number {
  return envInt("SKEIN_MAX_SEND_MESSAGE_BYTES", 16 * MiB, { min: 1024, max: 256 * MiB }, env);
}

function channelOptions(env: Env): ChannelOptions {
  return {
    "grpc.keepalive_time_ms": envInt("SKEIN_KEEPALIVE_TIME_MS", 30_000, { min: 1_000, max: 86_400_000 }, env),
    "grpc.keepalive_timeout_ms": envInt("SKEIN_KEEPALIVE_TIMEOUT_MS", 10_000, { min: 1_000, max: 600_000 }, env),
    "grpc.keepalive_permit_without_calls": 1,
    // Clients may ping every 10 s without being told to calm down.
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    "grpc.max_receive_message_length": envInt("SKEIN_MAX_RECV_MESSAGE_BYTES", 4 * MiB, { min: 1024, max: 256 * MiB }, env),
    "grpc.max_send_message_length": maxSendMessageBytes(env),
  };
}

/** Starts a gRPC server hosting the services plus health and reflection. */
export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const env = opts.env ?? process.env;
  const address = envString(opts.addrVar, opts.defaultAddr, env);
  const authToken = envOptional("SKEIN_AUTH_TOKEN", env);
  assertBindAllowed(address, opts.addrVar, authToken);
  const graceMs = envInt("SKEIN_SHUTDOWN_GRACE_MS", 10_000, { min: 0, max: 3_600_000 }, env);
  const { credentials, tls } = serverCredentials(env);

  const draining = new AbortController();
  const forced = new AbortController();
  const stopped = new AbortController();
  // Every call in flight listens on these; hundreds at once are normal.
  setMaxListeners(0, draining.signal, forced.signal, stopped.signal);
  const callEnv: CallEnvironment = {
    log: opts.log,
    authToken,
    draining: draining.signal,
    forced: forced.signal,
    stopped: stopped.signal,
    hooks: grpcMetricsHooks,
    inFlight: new Set(),
  };
  const health = new HealthRegistry(opts.services.map((s) => s.name));
  const index = DescriptorIndex.fromFile(descriptorSetPath);
  const all = [...opts.services, health.service()];
  all.push(...reflectionServices(index, () => all.map((s) => s.name)));
  for (const s of all) {
    if (!index.hasSymbol(s.name)) throw new Error(`${s.name} is missing from the descriptor set; run npm run generate`);
  }

  const server = new Server(channelOptions(env));
  for (const s of all) server.addService(s.definition, bindService(s, callEnv));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  const metricsAddr = envOptional("SKEIN_METRICS_ADDR", env);
  const service = String(opts.log.bindings().service ?? "skein");
  const metrics = metricsAddr ? await serveMetrics(metricsAddr, service, opts.log) : undefined;
  opts.log.info({ address, port, tls, auth: authToken !== undefined, services: all.map((s) => s.name) }, "listening");

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> =>
    (closing ??= (async () => {
      opts.log.info({ reason, graceMs, inFlight: callEnv.inFlight.size }, "shutting down");
      health.setAllNotServing();
      draining.abort();
      const graceTimer = setTimeout(() => forced.abort(), graceMs);
      // Stop accepting calls now. Graceful close waits on every connection,
      // and an idle client can hold one open for long; so once every call has
      // ended, connections get a short window to flush final statuses, then
      // are closed.
      const serverClosed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const domainClosed = (opts.onShutdown?.({ forced: forced.signal, graceMs }) ?? Promise.resolve()).catch((err: unknown) =>
        opts.log.error({ err }, "domain shutdown failed"),
      );
      await untilAborted(Promise.all([settled(callEnv.inFlight), domainClosed]), forced.signal);
      if (forced.signal.aborted) {
        opts.log.warn({ inFlight: callEnv.inFlight.size }, "grace period over; ending remaining calls");
        // Self-ending streams (replies) end as the domain stops their work; any still open after that is cut.
        await Promise.all([settled(callEnv.inFlight), domainClosed.then(() => stopped.abort())]);
      }
      stopped.abort();
      await untilAborted(serverClosed, AbortSignal.timeout(FLUSH_WINDOW_MS));
      server.forceShutdown();
      await metrics?.close();
      clearTimeout(graceTimer);
      opts.log.info("stopped");
    })());

  return { address, port, shutdown, force: () => forced.abort() };
}

/** Resolves once the set is empty, including calls added while waiting. */
async function settled(inFlight: Set<Promise<unknown>>): Promise<void> {
  while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
}
