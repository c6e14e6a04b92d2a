import type { Logger } from "pino";
import { ConfigError } from "./config.js";
import { watchLifeline, type Lifeline } from "./lifeline.js";
import { ListenError } from "./listen-error.js";
import { createLogger } from "./logger.js";
import { readServeSettings } from "./serve-settings.js";
import type { RunningServer } from "./server.js";

/** Stands in for a service's default address, which is always loopback, when only checking settings. */
const LOOPBACK_ANY_PORT = "127.0.0.1:0";

/**
 * Runs a service process: creates its logger, starts it, turns SIGTERM/SIGINT
 * (or the launcher's lifeline closing) into one graceful shutdown (a second
 * signal ends the grace period), exits 0 once stopped. A bad setting, or an
 * address it cannot listen on, exits 2 with exactly one line on stderr.
 */
export async function runMain(service: string, start: (log: Logger) => Promise<RunningServer>): Promise<void> {
  let server: RunningServer;
  let lifeline: Lifeline | undefined;
  try {
    lifeline = watchLifeline();
    const log = createLogger(service);
    // The runtime's own settings are checked before the service starts anything.
    readServeSettings(`SKEIN_${service.toUpperCase()}_ADDR`, LOOPBACK_ANY_PORT);
    process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
    server = await start(log);
    let signals = 0;
    const stop = (reason: string) => {
      if (++signals > 1) return server.force();
      void server.shutdown(reason).then(() => process.exit(0));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    lifeline?.ready({ service, address: server.boundAddress, port: server.port, metrics: server.metricsAddress, tls: server.tls, auth: server.auth }, () =>
      stop("launcher gone (lifeline closed)"),
    );
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ListenError) {
      process.stderr.write(`skein ${service}: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`skein ${service}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
}
