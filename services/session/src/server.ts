import { session } from "@skein/proto";
import { hosted, serve, type Logger, type RunningServer } from "@skein/runtime";
import { loadConfig } from "./config.js";
import { sessionHandlers } from "./handlers.js";
import { createProvider } from "./providers/index.js";
import { Sessions } from "./sessions.js";
import { JsonlSessionStore } from "./store/jsonl-store.js";

type Env = Record<string, string | undefined>;

/** Composes the session service (config, store, provider, runs, handlers) and serves it. */
export async function startSessionServer(env: Env, log: Logger): Promise<RunningServer & { sessions: Sessions }> {
  const config = loadConfig(env, log);
  const store = await JsonlSessionStore.open(config.sessionsDir, log, { syncEachMessage: config.syncEachMessage });
  const p = config.provider;
  const provider =
    "settings" in p
      ? { provider: createProvider(p.settings, { idleTimeoutMs: config.providerTimeoutMs, maxRetries: config.providerMaxRetries, maxTokens: config.maxTokens }) }
      : { missing: p.missing };
  if ("settings" in p) log.info({ provider: p.settings.kind, model: p.settings.model, baseURL: p.settings.baseURL, source: p.settings.source }, "model provider");
  else log.warn({ reason: p.missing }, "no model provider: Reply will fail until one is configured");
  log.info({ sessionsDir: config.sessionsDir }, "session store");
  const sessions = new Sessions({ store, provider, maxMessageChars: config.maxMessageChars, maxTurns: config.maxTurns, eventBuffer: config.eventBuffer, log });
  const server = await serve({
    addrVar: "SKEIN_SESSION_ADDR",
    defaultAddr: "127.0.0.1:50051",
    services: [hosted("skein.session.v1.SessionService", session.SessionServiceService, sessionHandlers(sessions))],
    log,
    env,
    onShutdown: async ({ forced }) => {
      await sessions.runs.shutdown(forced);
      await store.close();
    },
  });
  return Object.assign(server, { sessions });
}
