import { isAbsolute, join } from "node:path";
import type { Env } from "@skein/host";

/** goose's own settings file, so a machine set up for the goose CLI works unchanged. */
export function gooseConfigPath(env: Env, home: string): string {
  return join(env.XDG_CONFIG_HOME ?? join(home, ".config"), "goose", "config.yaml");
}

/** goose's secrets file (API keys goose stores outside the keyring). */
export function gooseSecretsPath(env: Env, home: string): string {
  return join(env.XDG_CONFIG_HOME ?? join(home, ".config"), "goose", "secrets.yaml");
}

/**
 * goose's own sessions directory (crates/goose/src/config/paths.rs): under
 * $GOOSE_PATH_ROOT/data when set, else the XDG data directory
 * ($XDG_DATA_HOME/goose when it is an absolute path, else ~/.local/share/goose).
 */
export function gooseSessionsDir(env: Env, home: string): string {
  const root = env.GOOSE_PATH_ROOT;
  if (root !== undefined && root !== "") return join(root, "data", "sessions");
  const xdg = env.XDG_DATA_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(home, ".local", "share"), "goose", "sessions");
}
