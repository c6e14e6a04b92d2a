import type { Env } from "./env.js";
import { join } from "node:path";

/** Where tmux keeps the sockets of this user: $TMUX_TMPDIR (or /tmp)/tmux-<uid>. */
export function tmuxSocketDir(env: Env = process.env): string {
  return join(env.TMUX_TMPDIR || "/tmp", `tmux-${process.getuid?.() ?? 0}`);
}

/** The lock a fleet service holds beside the tmux socket it supervises. */
export function fleetSocketLockPath(socket: string, env: Env = process.env): string {
  return join(tmuxSocketDir(env), `${socket}.skein-fleet.lock`);
}
