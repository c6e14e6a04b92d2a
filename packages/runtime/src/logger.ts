import { createRequire } from "node:module";
import pino, { type Logger } from "pino";
import { envEnum } from "./config.js";

export type { Logger };

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
const FORMATS = ["auto", "json", "pretty"] as const;

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "api_key",
  "*.api_key",
  // Environments handed to agents and extensions carry their API keys.
  "env",
  "*.env",
  "headers.authorization",
  'headers["x-api-key"]',
];

type Env = Record<string, string | undefined>;

/** The logging settings, read (and checked) on their own so a bad one is reported before anything logs. */
export function logSettings(env: Env = process.env): { level: (typeof LEVELS)[number]; format: (typeof FORMATS)[number] } {
  return { level: envEnum("SKEIN_LOG_LEVEL", LEVELS, "info", env), format: envEnum("SKEIN_LOG_FORMAT", FORMATS, "auto", env) };
}

/**
 * The process logger: JSON lines on stdout, pretty only when stdout is a
 * terminal (SKEIN_LOG_FORMAT=json|pretty overrides), level from SKEIN_LOG_LEVEL.
 * Pretty is one line per record, coloured unless NO_COLOR is set.
 */
export function createLogger(service: string, opts: { destination?: NodeJS.WritableStream; pretty?: boolean; level?: (typeof LEVELS)[number] } = {}): Logger {
  const settings = logSettings();
  const options = {
    level: opts.level ?? settings.level,
    base: { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const format = settings.format;
  const usePretty = opts.pretty ?? (opts.destination === undefined && (format === "pretty" || (format === "auto" && process.stdout.isTTY === true)));
  if (usePretty) {
    // Loaded only when wanted: services logging JSON (containers, CI) skip its start-up cost.
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
    const stream = pretty({
      colorize: process.env.NO_COLOR === undefined || process.env.NO_COLOR === "",
      sync: true,
      singleLine: true,
      translateTime: "HH:MM:ss.l",
      // The launcher prefixes each line with the service; pid and host are noise in a terminal.
      ignore: "pid,hostname,service",
    });
    return pino(options, stream);
  }
  const dest = pino.destination({ fd: 1, sync: true });
  // A launcher that died takes the read end of stdout with it; the shutdown
  // that follows must not crash on EPIPE while logging.
  dest.on("error", () => undefined);
  return pino(options, opts.destination ?? dest);
}
