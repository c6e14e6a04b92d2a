import { rm } from "node:fs/promises";
import { writeFileAtomic } from "./atomic-file.js";

export type HeartbeatStatus = "ok" | "exited" | "stopped";

export interface Heartbeat {
  readonly at: Date;
  readonly pid: number;
  readonly status: HeartbeatStatus;
  readonly runtime: string;
  readonly agent: string;
  readonly exitCode?: number | undefined;
  readonly paneId: string;
  readonly socket: string;
  readonly restarts: number;
}

/** UTC ISO-8601 to the second, e.g. 2026-11-21T05:34:04Z (the format fleet monitors parse). */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The file format existing fleet monitors parse: the first three lines are
 * fixed (ts, pid, status); the rest are key=value lines they may ignore.
 */
export function formatHeartbeat(h: Heartbeat): string {
  const lines = [`ts=${isoSeconds(h.at)}`, `pid=${h.pid}`, `status=${h.status}`, `runtime=${h.runtime}`, `agent=${h.agent}`];
  if (h.status === "exited") lines.push(`exit_code=${h.exitCode ?? ""}`);
  lines.push(`pane=${h.paneId}`, `tmux_socket=${h.socket}`, `restarts=${h.restarts}`, "writer=skein-fleet");
  return `${lines.join("\n")}\n`;
}

export function writeHeartbeat(file: string, h: Heartbeat): Promise<void> {
  return writeFileAtomic(file, formatHeartbeat(h), 0o644);
}

export async function removeHeartbeat(file: string): Promise<void> {
  await rm(file, { force: true });
}
