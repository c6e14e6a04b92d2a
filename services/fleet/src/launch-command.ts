import { ENV_KEY } from "@skein/host";

/**
 * The shell command line a pane runs. Kept exactly like the launcher it
 * replaces: `export PATH=<dirs>:"$PATH"; export K='v'; exec <command>`. The
 * command is the caller's shell command line, forwarded as is (flags intact);
 * every other value is single-quoted so it is data, never code.
 */

/** POSIX single quoting: the only character special inside '…' is ' itself. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface LaunchSpec {
  /** Already resolved (existing, de-duplicated) directories, in PATH order. */
  readonly binDirs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly command: string;
}


export function launchCommand(spec: LaunchSpec): string {
  const parts: string[] = [];
  // Written even when the service's PATH has these dirs: the pane gets the tmux server's environment.
  if (spec.binDirs.length > 0) parts.push(`export PATH=${spec.binDirs.map(shellQuote).join(":")}:"$PATH"`);
  for (const [key, value] of Object.entries(spec.env)) {
    if (!ENV_KEY.test(key)) throw new Error(`invalid environment variable name ${JSON.stringify(key)}`);
    parts.push(`export ${key}=${shellQuote(value)}`);
  }
  parts.push(`exec ${spec.command}`);
  return parts.join("; ");
}

/**
 * PATH order for a pane: the request's dirs, then SKEIN_RUNTIME_BIN, then
 * ~/.npm-global/bin and ~/.local/bin; each only if it exists, first one wins.
 */
export function resolveBinDirs(
  candidates: { request: readonly string[]; configured: readonly string[]; home: string },
  isDirectory: (path: string) => boolean,
): string[] {
  const all = [...candidates.request, ...candidates.configured, `${candidates.home}/.npm-global/bin`, `${candidates.home}/.local/bin`];
  const out: string[] = [];
  for (const dir of all) {
    const clean = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
    if (!out.includes(clean) && isDirectory(clean)) out.push(clean);
  }
  return out;
}
