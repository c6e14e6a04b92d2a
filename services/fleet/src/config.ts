import { homedir } from "node:os";
import { join } from "node:path";
import { ConfigError, envInt, envOptional, envString } from "@skein/runtime";
import { DEFAULT_AGENT_ENV_PASSTHROUGH, parsePassthrough, tmuxClientEnv } from "./agent-env.js";
import type { Env } from "@skein/host";

export interface FleetConfig {
  /** `tmux -L <socket>`: the one tmux server this service owns. */
  readonly socket: string;
  /** SKEIN_RUNTIME_BIN split on ":"; baked into every pane's PATH after the request's own dirs. */
  readonly runtimeBinDirs: readonly string[];
  readonly heartbeatDir: string;
  /** Where a request's heartbeat_dir may lie: SKEIN_HEARTBEAT_DIR and SKEIN_HEARTBEAT_ROOTS. */
  readonly heartbeatRoots: readonly string[];
  readonly heartbeatIntervalSeconds: number;
  /** The environment tmux (and so every agent) gets: SKEIN_AGENT_ENV_PASSTHROUGH applied to the service's. */
  readonly tmuxEnv: Readonly<Record<string, string>>;
  /** Directory of the state file that remembers what tmux does not (restart policy, env, counters). */
  readonly stateDir: string;
  readonly home: string;
  /** Lines of an agent's screen kept when its pane ends (0: none), served by CaptureOutput afterwards. */
  readonly keepLines: number;
  /** SKEIN_FLEET_IDLE_AFTER_S: no output change this long (and no prompt) is idle. */
  readonly idleAfterMs: number;
  /** SKEIN_FLEET_PROMPTS: the operator's additions to the prompt table. */
  readonly promptsFile: string | undefined;
  readonly webhookUrl: string | undefined;
  readonly webhookSecret: string | undefined;
  /** SKEIN_FLEET_WORKTREES_DIR: root of the agents' worktrees (default: beside each repository). */
  readonly worktreesDir: string | undefined;
}

export const HEARTBEAT_INTERVAL_RANGE = { min: 1, max: 3600 } as const;
/** Up to what CaptureOutput can ask for at once. */
export const KEEP_LINES_RANGE = { min: 0, max: 10_000 } as const;

export const IDLE_AFTER_RANGE = { min: 1, max: 86_400 } as const;

/** The URL when it is one a webhook can be POSTed to (http or https), else undefined. */
export function webhookUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.toString() : undefined;
}

export function loadConfig(env: Env = process.env): FleetConfig {
  const home = envOptional("HOME", env) ?? homedir();
  const socket = envString("SKEIN_TMUX_SOCKET", "skein-fleet", env);
  // tmux puts the socket at /tmp/tmux-<uid>/<name>: a name must stay one path segment.
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(socket) || socket === "." || socket === "..") {
    throw new ConfigError(`SKEIN_TMUX_SOCKET=${JSON.stringify(socket)} must match [A-Za-z0-9_.-]{1,100}`);
  }
  const runtimeBinDirs = (envOptional("SKEIN_RUNTIME_BIN", env) ?? "").split(":").filter((d) => d !== "");
  for (const d of runtimeBinDirs) {
    if (!d.startsWith("/")) throw new ConfigError(`SKEIN_RUNTIME_BIN: ${JSON.stringify(d)} is not an absolute directory`);
  }
  const xdgRuntime = envOptional("XDG_RUNTIME_DIR", env);
  const heartbeatDir = envString(
    "SKEIN_HEARTBEAT_DIR",
    xdgRuntime ? join(xdgRuntime, "skein", "heartbeats") : join(home, ".local", "state", "skein", "heartbeats"),
    env,
  );
  if (!heartbeatDir.startsWith("/")) throw new ConfigError(`SKEIN_HEARTBEAT_DIR=${JSON.stringify(heartbeatDir)} must be absolute`);
  const heartbeatRoots = [heartbeatDir];
  for (const d of (envOptional("SKEIN_HEARTBEAT_ROOTS", env) ?? "").split(":").filter((r) => r !== "")) {
    if (!d.startsWith("/")) throw new ConfigError(`SKEIN_HEARTBEAT_ROOTS: ${JSON.stringify(d)} is not an absolute directory`);
    heartbeatRoots.push(d);
  }
  const allowed = parsePassthrough(envString("SKEIN_AGENT_ENV_PASSTHROUGH", DEFAULT_AGENT_ENV_PASSTHROUGH, env));
  const xdgState = envOptional("XDG_STATE_HOME", env);
  const stateDir = envString("SKEIN_FLEET_STATE_DIR", join(xdgState ?? join(home, ".local", "state"), "skein"), env);
  if (!stateDir.startsWith("/")) throw new ConfigError(`SKEIN_FLEET_STATE_DIR=${JSON.stringify(stateDir)} must be absolute`);
  const hook = envOptional("SKEIN_FLEET_WEBHOOK_URL", env);
  const webhook = hook === undefined ? undefined : webhookUrl(hook);
  if (hook !== undefined && webhook === undefined) throw new ConfigError(`SKEIN_FLEET_WEBHOOK_URL=${JSON.stringify(hook)} must be an http:// or https:// URL`);
  const worktreesDir = envOptional("SKEIN_FLEET_WORKTREES_DIR", env);
  if (worktreesDir !== undefined && !worktreesDir.startsWith("/")) throw new ConfigError(`SKEIN_FLEET_WORKTREES_DIR=${JSON.stringify(worktreesDir)} must be absolute`);
  return {
    socket,
    runtimeBinDirs,
    heartbeatDir,
    heartbeatRoots,
    heartbeatIntervalSeconds: envInt("SKEIN_HEARTBEAT_INTERVAL", 15, HEARTBEAT_INTERVAL_RANGE, env),
    stateDir,
    home,
    tmuxEnv: tmuxClientEnv(env, allowed),
    keepLines: envInt("SKEIN_FLEET_KEEP_LINES", 1000, KEEP_LINES_RANGE, env),
    idleAfterMs: envInt("SKEIN_FLEET_IDLE_AFTER_S", 30, IDLE_AFTER_RANGE, env) * 1000,
    promptsFile: envOptional("SKEIN_FLEET_PROMPTS", env),
    webhookUrl: webhook,
    webhookSecret: envOptional("SKEIN_FLEET_WEBHOOK_SECRET", env),
    worktreesDir,
  };
}
