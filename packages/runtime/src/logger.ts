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

/**
 * The process logger: JSON lines on stdout, pretty only when stdout is a
 * terminal (SKEIN_LOG_FORMAT=json|pretty overrides), level from SKEIN_LOG_LEVEL.
 */
export function createLogger(service: string, opts: { destination?: NodeJS.WritableStream; pretty?: boolean; level?: (typeof LEVELS)[number] } = {}): Logger {
  const level = opts.level ?? envEnum("SKEIN_LOG_LEVEL", LEVELS, "info");
  const options = {
    level,
    base: { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const format = envEnum("SKEIN_LOG_FORMAT", FORMATS, "auto");
  const usePretty = opts.pretty ?? (opts.destination === undefined && (format === "pretty" || (format === "auto" && process.stdout.isTTY === true)));
  if (usePretty) {
    // Loaded only when wanted: services logging JSON (containers, CI) skip its start-up cost.
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
    return pino(options, pretty({ colorize: true, sync: true }));
  }
  return pino(options, opts.destination ?? pino.destination({ fd: 1, sync: true }));
}
