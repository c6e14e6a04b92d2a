import { session } from "@skein/proto";
import { createLogger, hosted, runMain, serve } from "@skein/runtime";
import { loadConfig } from "./config.js";
import { createProvider } from "./providers/index.js";
import { sessionHandlers } from "./handlers.js";
import { Sessions } from "./sessions.js";
import { JsonlSessionStore } from "./store/jsonl-store.js";

const log = createLogger("session");

await runMain(log, async () => {
  const config = loadConfig(process.env, log);
  const store = await JsonlSessionStore.open(config.sessionsDir, log, { syncEachMessage: config.syncEachMessage });
  const p = config.provider;
  const provider =
    "settings" in p
      ? { provider: createProvider(p.settings, { idleTimeoutMs: config.providerTimeoutMs, maxRetries: config.providerMaxRetries, maxTokens: config.maxTokens }) }
      : { missing: p.missing };
  if ("settings" in p) log.info({ provider: p.settings.kind, model: p.settings.model, baseURL: p.settings.baseURL, source: p.settings.source }, "model provider");
  else log.warn({ reason: p.missing }, "no model provider: Reply will fail until one is configured");
  const sessions = new Sessions({ store, provider, maxMessageChars: config.maxMessageChars, maxTurns: config.maxTurns, eventBuffer: config.eventBuffer, log });
  log.info({ sessionsDir: config.sessionsDir }, "session store");
  return serve({
    addrVar: "SKEIN_SESSION_ADDR",
    defaultAddr: "127.0.0.1:50051",
    services: [hosted("skein.session.v1.SessionService", session.SessionServiceService, sessionHandlers(sessions))],
    log,
    onShutdown: async ({ forced }) => {
      await sessions.runs.shutdown(forced);
      await store.close();
    },
  });
});
