import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { writeAtomic } from "@skein/host";

/** `unknown`: the pane is alive but its pid is not the process started at launch. */
export type HeartbeatStatus = "ok" | "unknown" | "exited" | "stopped";

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

const madeDirs = new Set<string>();

/**
 * Replaces the heartbeat file atomically (monitors never read half a file).
 * Beats are rewritten every interval for every agent, so the directory is
 * created once rather than on every write, and the rename is not fsynced: a
 * beat lost to a power cut is rewritten within one interval.
 */
export async function writeHeartbeat(file: string, h: Heartbeat): Promise<void> {
  const dir = dirname(file);
  if (!madeDirs.has(dir)) {
    // Readable by fleet monitors running as other users, like the files themselves.
    await mkdir(dir, { recursive: true, mode: 0o755 });
    madeDirs.add(dir);
  }
  try {
    await writeAtomic(file, formatHeartbeat(h), { mode: 0o644, durable: false });
  } catch (err) {
    // The directory may have been removed since: forget it so the next beat recreates it.
    madeDirs.delete(dir);
    throw err;
  }
}

/**
 * Removes the agent's heartbeat file, but only one this service wrote for this
 * agent: a file another writer put at that path is not ours to delete.
 */
export async function removeHeartbeat(file: string, agent: string): Promise<void> {
  let content: string;
  try {
    content = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const lines = content.split("\n");
  if (!lines.includes(`agent=${agent}`) || !lines.includes("writer=skein-fleet")) return;
  await rm(file, { force: true });
}
