import type { Logger } from "@skein/runtime";
import { createPool } from "./pool.js";

/** A probe answers within this long or counts as unreachable. */
const PROBE_TIMEOUT_MS = 1_500;

/**
 * The health probe's own connection (one, kept open while it works): a
 * `SELECT 1` that neither waits behind busy replies for the main pool nor
 * opens a connection per probe.
 */
export function postgresProbe(url: string, applicationName: string, log: Logger): { probe: () => Promise<void>; close: () => Promise<void> } {
  const pool = createPool(url, log, { applicationName: `${applicationName} probe`.slice(0, 63), max: 1, connectTimeoutMs: PROBE_TIMEOUT_MS, queryTimeoutMs: PROBE_TIMEOUT_MS });
  return {
    probe: async () => void (await pool.query("SELECT 1")),
    close: () => pool.end(),
  };
}
