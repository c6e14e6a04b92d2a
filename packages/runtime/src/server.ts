import { setMaxListeners } from "node:events";
import { Server, setLogger } from "@grpc/grpc-js";
import { descriptorSetPath } from "@skein/proto";
import type { Logger } from "pino";
import { untilAborted } from "./abort.js";
import { AbortFanout } from "./abort-fanout.js";
import type { SkeinError } from "./errors.js";
import { ListenError } from "./listen-error.js";
import type { CallEnvironment } from "./call.js";
import { DescriptorIndex } from "./descriptors.js";
import { HealthRegistry } from "./health.js";
import { grpcMetricsHooks, serveMetrics } from "./metrics.js";
import { reflectionServices } from "./reflection.js";
import { readServeSettings } from "./serve-settings.js";
import { bindService, servedDefinition, type HostedService } from "./service.js";
import type { Env } from "@skein/host";

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
  /** Called before the server listens, so a service that cannot work is NOT_SERVING from its first health check. */
  readonly onHealth?: (health: HealthControl) => void;
  readonly env?: Env;
  /**
   * Names failures the service knows that are not SkeinErrors where they are
   * thrown (a driver's error for an unreachable database, a full disk): the
   * status they get instead of INTERNAL.
   */
  readonly classifyError?: (err: unknown) => SkeinError | undefined;
}

/** What a service may say about its own health. */
export interface HealthControl {
  /** `service` is a hosted service's full name; the overall status follows. */
  setServing(service: string, serving: boolean): void;
}

export interface RunningServer {
  readonly address: string;
  readonly port: number;
  /** The address as bound: port 0 replaced by the port the system chose. */
  readonly boundAddress: string;
  /** Where metrics are served (host:port as bound), when they are. */
  readonly metricsAddress?: string;
  readonly tls: "off" | "tls" | "mtls";
  readonly auth: boolean;
  /** Graceful: NOT_SERVING, stop accepting, let calls finish within the grace period, then force. */
  shutdown(reason: string): Promise<void>;
  /** Ends the grace period now. */
  force(): void;
}

/** How long finished calls' connections may take to close on their own at shutdown. */
const FLUSH_WINDOW_MS = 500;

/** Starts a gRPC server hosting the services plus health and reflection. */
export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const { address, authToken, reflectionAuth, graceMs, credentials, tls, metrics: metricsConfig, channelOptions } = readServeSettings(
    opts.addrVar,
    opts.defaultAddr,
    opts.env ?? process.env,
  );
  // grpc-js writes its own lines to stderr (e.g. "E No address added" before
  // a bind error we report ourselves): they belong in the log, at debug.
  setLogger(grpcLogSink(opts.log));

  const draining = new AbortController();
  const forced = new AbortController();
  const stopped = new AbortController();
  // Every watch in flight listens on draining; hundreds at once are normal.
  setMaxListeners(0, draining.signal, forced.signal, stopped.signal);
  const callEnv: CallEnvironment = {
    log: opts.log,
    authToken,
    reflectionAuth,
    draining: draining.signal,
    forced: new AbortFanout(forced.signal),
    stopped: new AbortFanout(stopped.signal),
    hooks: grpcMetricsHooks,
    inFlight: new Set(),
    ...(opts.classifyError ? { classifyError: opts.classifyError } : {}),
  };
  const health = new HealthRegistry(opts.services.map((s) => s.name));
  opts.onHealth?.({ setServing: (service, serving) => health.setServing(service, serving) });
  const index = DescriptorIndex.fromFile(descriptorSetPath);
  const all = [...opts.services, health.service()];
  all.push(...reflectionServices(index, () => all.map((s) => s.name)));
  for (const s of all) {
    if (!index.hasSymbol(s.name)) throw new Error(`${s.name} is missing from the descriptor set; run npm run generate`);
  }

  const server = new Server(channelOptions);
  const maxSendBytes = channelOptions["grpc.max_send_message_length"] as number;
  for (const s of all) server.addService(servedDefinition(s.definition, maxSendBytes), bindService(s, callEnv));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(ListenError.fromGrpc(opts.addrVar, address, err)) : resolve(p))),
  );
  const service = String(opts.log.bindings().service ?? "skein");
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    metrics = metricsConfig ? await serveMetrics(metricsConfig, service, opts.log) : undefined;
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  const boundAddress = address.startsWith("unix:") ? address : address.replace(/:\d+$/, `:${port}`);
  opts.log.info({ address: boundAddress, port, tls, auth: authToken !== undefined, reflectionAuth, services: all.map((s) => s.name) }, "listening");

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

  return {
    address,
    port,
    boundAddress,
    ...(metrics ? { metricsAddress: metrics.address } : {}),
    tls,
    auth: authToken !== undefined,
    shutdown,
    force: () => forced.abort(),
  };
}

function grpcLogSink(log: Logger): Partial<Console> {
  const write = (...args: unknown[]) => log.debug({ grpc: args.map(String).join(" ") }, "grpc-js");
  return { error: write, info: write, debug: write };
}

/** Resolves once the set is empty, including calls added while waiting. */
async function settled(inFlight: Set<Promise<unknown>>): Promise<void> {
  while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
}
