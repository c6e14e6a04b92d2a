import type { Logger } from "pino";
import { ConfigError } from "./config.js";
import type { RunningServer } from "./server.js";

/**
 * Runs a service process: starts it, turns SIGTERM/SIGINT into a graceful
 * shutdown (a second signal ends the grace period), exits 0 once stopped, and
 * exits 2 with a one-line reason on bad configuration.
 */
export async function runMain(log: Logger, start: () => Promise<RunningServer>): Promise<void> {
  let server: RunningServer;
  try {
    server = await start();
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal({ reason: err.message }, `configuration error: ${err.message}`);
      process.stderr.write(`skein: ${err.message}\n`);
      process.exit(2);
    }
    log.fatal({ err }, "failed to start");
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) return server.force();
    void server.shutdown(sig).then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
}
