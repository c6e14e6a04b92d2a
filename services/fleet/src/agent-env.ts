import { ConfigError } from "@skein/runtime";

/**
 * What an agent may inherit from the fleet service's environment. Panes get the
 * tmux server's environment and the server gets the environment of the tmux
 * client that started it, so the service runs tmux with only these variables:
 * its secrets (SKEIN_AUTH_TOKEN, provider keys, …) never reach an agent.
 */
export const DEFAULT_AGENT_ENV_PASSTHROUGH = "PATH,HOME,USER,LOGNAME,SHELL,LANG,LANGUAGE,LC_*,TERM,COLORTERM,TZ,TMPDIR";

/** `NAME` or `PREFIX*`. */
const ENTRY = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

/** Parses SKEIN_AGENT_ENV_PASSTHROUGH: comma-separated names, a trailing `*` matching a prefix (LC_*). */
export function parsePassthrough(spec: string, variable = "SKEIN_AGENT_ENV_PASSTHROUGH"): (name: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const raw of spec.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    if (!ENTRY.test(entry)) throw new ConfigError(`${variable}: ${JSON.stringify(entry)} is not NAME or PREFIX* (comma-separated)`);
    if (entry.endsWith("*")) prefixes.push(entry.slice(0, -1));
    else exact.add(entry);
  }
  // tmux is looked up on PATH and the launch line extends it: it always passes.
  exact.add("PATH");
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

/**
 * The environment every tmux call runs with: the allowed part of the service's
 * environment, plus TMUX_TMPDIR (where the socket lives). An outer tmux
 * ($TMUX, $TMUX_PANE) never leaks in, whatever the list says.
 */
export function tmuxClientEnv(env: Readonly<Record<string, string | undefined>>, allowed: (name: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (allowed(k) || k === "TMUX_TMPDIR") && k !== "TMUX" && k !== "TMUX_PANE") out[k] = v;
  }
  return out;
}
