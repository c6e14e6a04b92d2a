import type { Env } from "./env.js";
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Where tmux keeps the sockets of this user: $TMUX_TMPDIR (or /tmp)/tmux-<uid>. */
export function tmuxSocketDir(env: Env = process.env): string {
  return join(env.TMUX_TMPDIR || "/tmp", `tmux-${process.getuid?.() ?? 0}`);
}

/** The lock a fleet service holds beside the tmux socket it supervises. */
export function fleetSocketLockPath(socket: string, env: Env = process.env): string {
  return join(tmuxSocketDir(env), `${socket}.skein-fleet.lock`);
}

/** sun_path holds 108 bytes, its NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * The Unix socket a fleet service listens on for skein-fleet-signal, beside
 * the tmux socket (a private directory tmux made), so agents that outlive a
 * service restart still reach the next one. A long tmux socket name would
 * pass the kernel's limit: it is shortened then, still one per tmux socket.
 */
export function fleetSignalSocketPath(socket: string, env: Env = process.env): string {
  const path = join(tmuxSocketDir(env), `${socket}.skein-signal`);
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES) return path;
  const digest = createHash("sha256").update(socket).digest("hex").slice(0, 16);
  return join(tmuxSocketDir(env), `${socket.slice(0, 32)}-${digest}.skein-signal`);
}
