import { statSync } from "node:fs";
import { ENV_KEY, ENV_KEY_RULE, isWithin, resolveReal } from "@skein/host";
import { InvalidArgumentError } from "@skein/runtime";
import { HEARTBEAT_INTERVAL_RANGE, webhookUrl } from "./config.js";
import type { WorktreeRequest } from "./worktrees.js";

/** tmux rewrites "." and ":" in session names, and names are file names of heartbeats: keep them plain. */
export const AGENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function agentName(field: string, v: string): string {
  if (!AGENT_NAME.test(v)) throw new InvalidArgumentError(field, "must match [A-Za-z0-9_-]{1,64}");
  return v;
}

export function absolutePath(field: string, v: string): string {
  if (v.includes("\0")) throw new InvalidArgumentError(field, "must not contain NUL");
  if (!v.startsWith("/")) throw new InvalidArgumentError(field, "must be an absolute path");
  return v;
}

/** The path exists and is a directory (or a link to one). */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function existingDirectory(field: string, v: string): string {
  absolutePath(field, v);
  if (!isDirectory(v)) throw new InvalidArgumentError(field, "must be an existing directory");
  return v;
}

/**
 * A directory the service will create and write in: it must resolve (`..` and
 * symlinks as the kernel takes them) to one of the operator's roots or below.
 * Returns the resolved path, so what is written is exactly what was checked.
 */
export function confinedDirectory(field: string, v: string, roots: readonly string[]): string {
  absolutePath(field, v);
  const rule = `must lie within ${roots.join(" or ")} (SKEIN_HEARTBEAT_DIR, SKEIN_HEARTBEAT_ROOTS) after resolving .. and symlinks`;
  let real: string;
  let inside: boolean;
  try {
    real = resolveReal(v);
    inside = roots.some((r) => isWithin(real, resolveReal(r)));
  } catch (err) {
    throw new InvalidArgumentError(field, `${rule}; ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!inside) throw new InvalidArgumentError(field, `${rule}; it resolves to ${real}`);
  return real;
}

const MAX_TEXT_CHARS = 65_536;

/** Text handed to tmux as one argument: no NUL (it would cut the argument), bounded. */
export function text(field: string, v: string): string {
  if (v.includes("\0")) throw new InvalidArgumentError(field, "must not contain NUL");
  if (v.length > MAX_TEXT_CHARS) throw new InvalidArgumentError(field, `must be at most ${MAX_TEXT_CHARS} characters`);
  return v;
}

export function command(field: string, v: string): string {
  if (v.trim() === "") throw new InvalidArgumentError(field, "must not be empty");
  return text(field, v);
}

/** Plain label: it is written as one heartbeat line. */
export function label(field: string, v: string): string {
  if (/[\0\r\n]/.test(v)) throw new InvalidArgumentError(field, "must not contain NUL or line breaks");
  if (v.length > 256) throw new InvalidArgumentError(field, "must be at most 256 characters");
  return v;
}

export function binDirs(field: string, dirs: readonly string[]): string[] {
  return dirs.map((d, i) => {
    absolutePath(`${field}[${i}]`, d);
    if (d.includes(":")) throw new InvalidArgumentError(`${field}[${i}]`, "must not contain ':' (PATH separator)");
    return d;
  });
}

export function env(field: string, e: Readonly<Record<string, string>>): Record<string, string> {
  for (const [k, v] of Object.entries(e)) {
    if (!ENV_KEY.test(k)) throw new InvalidArgumentError(`${field}[${JSON.stringify(k)}]`, `key must match ${ENV_KEY_RULE}`);
    if (v.includes("\0")) throw new InvalidArgumentError(`${field}[${k}]`, "value must not contain NUL");
  }
  return { ...e };
}

export function intInRange(field: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(field, `must be within ${min}..${max}`);
  return v;
}

export function heartbeatInterval(field: string, v: number | undefined): number | undefined {
  return v === undefined ? undefined : intInRange(field, v, HEARTBEAT_INTERVAL_RANGE.min, HEARTBEAT_INTERVAL_RANGE.max);
}

export function notifyUrl(field: string, v: string): string {
  if (v === "") return v;
  const url = webhookUrl(v);
  if (url === undefined) throw new InvalidArgumentError(field, "must be an http:// or https:// URL");
  return url;
}

/** Git checks the branch and base itself (FAILED_PRECONDITION with its message); here only what git cannot take. */
export function worktree(field: string, w: { repo: string; branch: string; base: string; setupCommand: string }): WorktreeRequest {
  existingDirectory(`${field}.repo`, w.repo);
  for (const [k, value] of [["branch", w.branch], ["base", w.base]] as const) {
    if (/[\0\s]/.test(value) || value.startsWith("-")) throw new InvalidArgumentError(`${field}.${k}`, "must not contain whitespace or NUL, nor start with '-'");
  }
  return { repo: w.repo, branch: w.branch, base: w.base, setupCommand: w.setupCommand === "" ? "" : text(`${field}.setup_command`, w.setupCommand) };
}
