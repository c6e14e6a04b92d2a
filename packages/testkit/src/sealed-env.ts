/**
 * What of the caller's environment a process started by a test may see. A
 * developer's shell carries settings for their own skein, goose or provider
 * (the quick start exports SKEIN_PROVIDER, SKEIN_MODEL, OPENAI_BASE_URL) and a
 * tmux client's TMUX/TMUX_PANE; a service under test that inherited them would
 * answer differently from CI. So every child gets only what the machine needs
 * to run programs (an allow-list), plus exactly what the test sets.
 */
const ALLOWED = new Set(["PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "TERM", "USER", "LOGNAME", "SHELL", "NODE_V8_COVERAGE", "NODE_EXTRA_CA_CERTS"]);

/** Prefixes of variables that configure skein, its providers, goose or tmux: never taken from the caller. */
export const CALLER_SETTING_PREFIXES = ["SKEIN_", "OPENAI_", "ANTHROPIC_", "GOOSE_", "TMUX"] as const;

const allowed = (name: string) => ALLOWED.has(name) || name.startsWith("LC_");

/** The allow-listed part of `from` (default: this process's environment) with `set` on top; undefined in `set` removes. */
export function sealedEnv(set: Record<string, string | undefined> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) if (v !== undefined && allowed(k)) env[k] = v;
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Removes the caller's skein/provider/goose/tmux settings from this process's
 * own environment (run by vitest before each test file), so that a test which
 * spreads process.env into a child, or code under test that reads it in
 * process, cannot pick them up either. SKEIN_TEST_* stay: they configure the
 * tests themselves (e.g. SKEIN_TEST_POSTGRES), and sealedEnv() keeps them from children.
 */
export function scrubCallerSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  const removed = Object.keys(env).filter((k) => !k.startsWith("SKEIN_TEST_") && CALLER_SETTING_PREFIXES.some((p) => k.startsWith(p)));
  for (const k of removed) delete env[k];
  return removed;
}
