import { readFileSync } from "node:fs";
import { ConfigError, envInt, envOptional } from "@skein/runtime";
import { databaseUrlProblem, redactUrl } from "./database-url.js";

type Env = Record<string, string | undefined>;

export interface PostgresSettings {
  /** SKEIN_DATABASE_URL, a libpq URL (with SKEIN_DATABASE_CA as its sslrootcert). Log it only through redactUrl. */
  readonly databaseUrl: string;
  /** SKEIN_RUN_LEASE_MS: a run's lease lives this long unrenewed; a dead replica's runs are taken over after it. */
  readonly runLeaseMs: number;
  /** SKEIN_DATABASE_WAIT_MS: how long a replica starting up waits for an unreachable database before it exits 2. */
  readonly databaseWaitMs: number;
  /**
   * SKEIN_EVENT_BATCH_MS: how long a run's text deltas may wait to share one append to the
   * database's event log (0: only those published while an append is in flight share one).
   */
  readonly eventBatchMs: number;
}

/** The settings of SKEIN_SESSION_STORE=postgres; a bad one is a ConfigError that never quotes the password. */
export function postgresSettings(env: Env): PostgresSettings {
  const url = envOptional("SKEIN_DATABASE_URL", env);
  if (url === undefined) throw new ConfigError("SKEIN_DATABASE_URL must be set when SKEIN_SESSION_STORE=postgres (a libpq URL such as postgresql://user:password@host:5432/skein)");
  const problem = databaseUrlProblem(url);
  if (problem) throw new ConfigError(`SKEIN_DATABASE_URL=${JSON.stringify(redactUrl(url))} ${problem}`);
  return {
    databaseUrl: withDatabaseCa(url, env),
    runLeaseMs: envInt("SKEIN_RUN_LEASE_MS", 10_000, { min: 500, max: 600_000 }, env),
    databaseWaitMs: envInt("SKEIN_DATABASE_WAIT_MS", 30_000, { min: 0, max: 3_600_000 }, env),
    eventBatchMs: envInt("SKEIN_EVENT_BATCH_MS", 20, { min: 0, max: 1_000 }, env),
  };
}

/**
 * SKEIN_DATABASE_CA: a PEM file of the CA that signed the server's certificate.
 * node-postgres reads sslmode=require as verify-full against the system's CAs,
 * so a server with a private CA is refused without it. It becomes the URL's
 * sslrootcert, which node-postgres reads (and verifies the host name against).
 */
function withDatabaseCa(url: string, env: Env): string {
  const ca = envOptional("SKEIN_DATABASE_CA", env);
  if (ca === undefined) return url;
  const u = new URL(url);
  if (u.searchParams.has("sslrootcert")) throw new ConfigError(`SKEIN_DATABASE_CA=${JSON.stringify(ca)} and sslrootcert in SKEIN_DATABASE_URL both name a CA file: keep one`);
  let pem: string;
  try {
    pem = readFileSync(ca, "utf8");
  } catch (err) {
    throw new ConfigError(`SKEIN_DATABASE_CA=${JSON.stringify(ca)} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`SKEIN_DATABASE_CA=${JSON.stringify(ca)} must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)`);
  u.searchParams.set("sslrootcert", ca);
  if (!u.searchParams.has("sslmode")) u.searchParams.set("sslmode", "verify-full");
  return u.toString();
}
