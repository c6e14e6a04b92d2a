import { readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { FileReplacer, makeDirectorySync } from "@skein/host";

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
  /** working, waiting, idle or unknown (a line old readers skip like any other key=value). */
  readonly activity?: string | undefined;
}

let lastSecond = Number.NaN;
let lastIso = "";

/** UTC ISO-8601 to the second, e.g. 2026-11-21T05:34:04Z (the format fleet monitors parse). */
export function isoSeconds(d: Date): string {
  // Every beat of one tick falls in the same second: format it once (the profile's largest JS cost per beat).
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastIso = `${d.toISOString().slice(0, 19)}Z`;
  }
  return lastIso;
}

/**
 * The file format existing fleet monitors parse: the first three lines are
 * fixed (ts, pid, status); the rest are key=value lines they may ignore.
 */
export function formatHeartbeat(h: Heartbeat): string {
  const lines = [`ts=${isoSeconds(h.at)}`, `pid=${h.pid}`, `status=${h.status}`, `runtime=${h.runtime}`, `agent=${h.agent}`];
  if (h.status === "exited") lines.push(`exit_code=${h.exitCode ?? ""}`);
  lines.push(`pane=${h.paneId}`, `tmux_socket=${h.socket}`, `restarts=${h.restarts}`);
  if (h.activity !== undefined) lines.push(`activity=${h.activity}`);
  lines.push("writer=skein-fleet");
  return `${lines.join("\n")}\n`;
}

const madeDirs = new Set<string>();
const files = new FileReplacer();

/**
 * Replaces the heartbeat file atomically (monitors never read half a file).
 * Beats are rewritten every interval for every agent, so this is the cheapest
 * write that keeps that promise (see FileReplacer): synchronous, no fsync (a
 * beat lost to a power cut is rewritten within one interval), the directory
 * created and swept of dead writers' temp files once. A final beat (exited,
 * stopped) removes the agent's temp files: no beat follows until it runs again.
 */
export function writeHeartbeat(file: string, h: Heartbeat): void {
  const dir = dirname(file);
  if (!madeDirs.has(dir)) {
    // Readable by fleet monitors running as other users, like the files themselves.
    makeDirectorySync(dir, 0o755);
    FileReplacer.sweep(dir);
    madeDirs.add(dir);
  }
  try {
    files.replace(file, formatHeartbeat(h), 0o644);
  } catch (err) {
    // The directory may have been removed since: forget it so the next beat recreates it.
    madeDirs.delete(dir);
    throw err;
  }
  if (h.status === "exited" || h.status === "stopped") files.forget(file);
}

/**
 * Removes the agent's heartbeat file, but only one this service wrote for this
 * agent: a file another writer put at that path is not ours to delete.
 */
export async function removeHeartbeat(file: string, agent: string): Promise<void> {
  files.forget(file);
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
