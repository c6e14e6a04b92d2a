import { session } from "@skein/proto";
import { hosted, serve, StorageUnavailableError, withReusedWriters, type Logger, type RunningServer } from "@skein/runtime";
import { loadConfig } from "./config.js";
import { loadServiceExtensions, PidRegistry } from "./extensions/index.js";
import { sessionHandlers } from "./grpc/handlers.js";
import { bindSessionMetrics } from "./metrics.js";
import { createProvider } from "./providers/index.js";
import { Sessions } from "./sessions.js";
import { ClusterCoordination } from "./cluster/cluster-coordination.js";
import { LocalCoordination, type Coordination, type StoreWatch } from "./coordination/coordination.js";
import { SessionSlots } from "./slots/session-slots.js";
import { PermissionFile } from "./permission-file.js";
import { openSessionStore } from "./store/open-store.js";
import { storeFault } from "@skein/goose-sessions";
import type { Env } from "@skein/host";

/** Reply and WatchSession stream thousands of small events a second: their encoder reuses one writer. */
const sessionDefinition = withReusedWriters(session.SessionServiceService, {
  reply: session.ReplyResponse,
  watchSession: session.WatchSessionResponse,
});

const SESSION_SERVICE = "skein.session.v1.SessionService";

/** Composes the session service (config, store, provider, agents, runs, handlers) and serves it. */
export async function startSessionServer(env: Env, log: Logger): Promise<RunningServer> {
  const config = loadConfig(env, log);
  const serviceExtensions = await loadServiceExtensions({ env, gooseConfig: config.gooseConfig, log });
  // Replicas share one PostgreSQL database: its store, leases and event log (cluster/session-cluster.ts).
  const coordination: Coordination = config.postgres
    ? await ClusterCoordination.open(config.postgres, config.eventBuffer, config.replica, log)
    : new LocalCoordination(await openSessionStore(config.store, config.sessionsDir, log, { syncEachMessage: config.syncEachMessage }));
  const store = coordination.store;
  // Before anything starts: end extension processes a killed previous instance left behind.
  const pids = await PidRegistry.open(config.sessionsDir, { log, killGraceMs: config.extensionKillGraceMs });
  const reaped = await pids.reapOrphans();
  if (reaped > 0) log.warn({ processGroups: reaped }, "ended extension processes left by a previous instance");
  const p = config.provider;
  const provider =
    "settings" in p
      ? { provider: createProvider(p.settings, { idleTimeoutMs: config.providerTimeoutMs, maxRetries: config.providerMaxRetries, maxTokens: config.maxTokens }) }
      : { missing: p.missing };
  if ("settings" in p) log.info({ provider: p.settings.kind, model: p.settings.model, baseURL: p.settings.baseURL, source: p.settings.source }, "model provider");
  else log.warn({ reason: p.missing }, "no model provider: Reply will fail until one is configured");
  log.info({ sessionsDir: config.sessionsDir, store: config.store, serviceExtensions: serviceExtensions.map((e) => e.name), idleTimeoutMs: config.idleTimeoutMs, maxLiveAgents: config.maxLiveAgents }, "session store");

  const slots = new SessionSlots({
    coordination,
    serviceExtensions,
    extensionOptions: { registry: pids, killGraceMs: config.extensionKillGraceMs, log },
    idleTimeoutMs: config.idleTimeoutMs,
    maxLive: config.maxLiveAgents,
    eventBuffer: config.eventBuffer,
    eventBufferTotal: config.eventBufferTotal,
    maxTurns: config.maxTurns,
    limits: { maxToolResultChars: config.maxToolResultChars, maxModelOutputChars: config.maxModelOutputChars },
    compaction: { threshold: config.autoCompactThreshold, contextLimit: config.contextLimit },
    permissions: new PermissionFile(config.permissionFile, log),
    approvalTimeoutMs: config.approvalTimeoutMs,
    log,
  });
  const sessions = new Sessions({
    coordination,
    provider,
    slots,
    serviceExtensions,
    maxMessageChars: config.maxMessageChars,
    defaultMode: config.defaultMode,
    replica: config.replica,
    log,
  });
  // Timeouts of replies paused before this start; a failure only costs those timeouts (CancelReply still ends them).
  if (provider.provider) {
    slots.rearmPausedReplies(provider.provider).catch((err: unknown) => log.warn({ err: (err as Error).message }, "could not re-arm the approval timeouts of paused replies"));
  }
  bindSessionMetrics({
    runningReplies: () => slots.running,
    liveAgents: () => slots.liveAgents,
    extensionProcesses: () => slots.extensionProcesses,
    evictions: () => slots.evictions,
    streamEvents: () => slots.published,
    pendingApprovals: () => slots.pendingApprovals,
  });
  // Ends every session's work and extension processes, then the records of them, then the store.
  let storeHealth: StoreWatch | undefined;
  const closeDomain = async (forced: AbortSignal) => {
    await storeHealth?.close();
    await slots.shutdown(forced);
    await pids.close();
    await coordination.close();
  };
  let server: RunningServer;
  try {
    server = await serve({
      addrVar: "SKEIN_SESSION_ADDR",
      defaultAddr: "127.0.0.1:50051",
      services: [hosted(SESSION_SERVICE, sessionDefinition, sessionHandlers(sessions, { maxResponseBytes: config.maxResponseBytes }))],
      log,
      env,
      onShutdown: async ({ forced }) => {
        await closeDomain(forced);
      },
      // Storage faults answer as what they are (UNAVAILABLE, RESOURCE_EXHAUSTED, …), not INTERNAL.
      classifyError: (err) => {
        const fault = storeFault(err, store.target);
        if (fault instanceof StorageUnavailableError) storeHealth?.suspect();
        return fault;
      },
      // A replica whose database is unreachable is NOT_SERVING, so load balancers route around it.
      onHealth: (health) => {
        storeHealth = coordination.watchHealth((serving) => health.setServing(SESSION_SERVICE, serving), log);
      },
    });
  } catch (err) {
    await closeDomain(AbortSignal.abort());
    throw err;
  }
  config.replica.address ||= server.boundAddress;
  return server;
}
