import { readFileSync } from "node:fs";

/** An environment: process.env, or the one a service or test was given. */
export type Env = Record<string, string | undefined>;

/** What an environment variable name may be (POSIX's portable names), for every env map skein accepts. */
export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const ENV_KEY_RULE = "[A-Za-z_][A-Za-z0-9_]*";

/**
 * Reads a PEM file named by a setting; the error names the setting and the
 * path (`SKEIN_TLS_CERT=/x: cannot read (ENOENT)`) for the caller to wrap in
 * its own error type (a ConfigError in a service, a CliError in the CLI).
 */
export function readPem(setting: string, path: string): { pem: Buffer } | { error: string } {
  try {
    return { pem: readFileSync(path) };
  } catch (err) {
    return { error: `${setting}=${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
}
