import type { Logger } from "@skein/runtime";
import { validateExtensionConfigs, type ExtensionConfig } from "./extension-config.js";
import { isObject, type GooseMetadata } from "./messages.js";

/**
 * skein's own state in a session's metadata line, under one key goose does not
 * know: goose's serde ignores unknown keys when reading, so the goose CLI still
 * resumes the file (a goose CLI rewrite drops the key; the session then simply
 * has no session-specific extensions in skein any more).
 *
 *   "skein": {"extensions": [{name, cmd, args, env, timeout_seconds}], "description_user_set": true, "seq_epochs": 2}
 *
 * `goose_mode` is goose's permission mode (sessions.db and PostgreSQL keep it in
 * their goose_mode column, goose ≤ 1.9's JSONL had none, so it lives here);
 * `approvals` the tool calls a paused reply waits on (see runs/approvals.ts).
 *
 * `seq_epochs` counts the event-numbering epochs used so far (see
 * slots/run-ownership.ts): each service instance that runs the session takes
 * the next one, so a seq never repeats across restarts.
 */
export const STATE_KEY = "skein";

interface SkeinState {
  extensions?: unknown;
  description_user_set?: unknown;
  seq_epochs?: unknown;
  goose_mode?: unknown;
  approvals?: unknown;
}

function stateOf(meta: GooseMetadata): SkeinState {
  const v = meta[STATE_KEY];
  return isObject(v) ? (v as SkeinState) : {};
}

function withState(meta: GooseMetadata, patch: SkeinState): GooseMetadata {
  return { ...meta, [STATE_KEY]: { ...stateOf(meta), ...patch } };
}

/** The session's own extensions; an entry edited into something invalid is skipped with a warning. */
export function sessionExtensions(meta: GooseMetadata, log?: Pick<Logger, "warn">): ExtensionConfig[] {
  const raw = stateOf(meta).extensions;
  if (raw === undefined) return [];
  try {
    return validateExtensionConfigs(raw, `${STATE_KEY}.extensions`);
  } catch (err) {
    log?.warn({ reason: (err as Error).message }, "the session's stored extensions are invalid; starting none of them");
    return [];
  }
}

export function withSessionExtensions(meta: GooseMetadata, configs: readonly ExtensionConfig[]): GooseMetadata {
  return withState(meta, {
    extensions: configs.map((c) => ({ name: c.name, cmd: c.cmd, args: c.args, env: c.env, timeout_seconds: c.timeoutSeconds })),
  });
}

/** A description the caller gave at CreateSession is never replaced by a generated one. */
export function descriptionUserSet(meta: GooseMetadata): boolean {
  return stateOf(meta).description_user_set === true;
}

export function markDescriptionUserSet(meta: GooseMetadata): GooseMetadata {
  return withState(meta, { description_user_set: true });
}

/** Event-numbering epochs used so far (0 for a session no skein instance has run). */
export function seqEpochsUsed(meta: GooseMetadata): number {
  const n = stateOf(meta).seq_epochs;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export function withSeqEpochsUsed(meta: GooseMetadata, n: number): GooseMetadata {
  return withState(meta, { seq_epochs: n });
}

/** goose's goose_mode values. */
export const MODE_NAMES = ["auto", "approve", "smart_approve", "chat"] as const;
export type GooseMode = (typeof MODE_NAMES)[number];

export function isGooseMode(v: unknown): v is GooseMode {
  return typeof v === "string" && (MODE_NAMES as readonly string[]).includes(v);
}

/** The session's mode; goose's default `auto` when none is stored (or an unknown one). */
export function sessionMode(meta: GooseMetadata): GooseMode {
  const m = stateOf(meta).goose_mode;
  return isGooseMode(m) ? m : "auto";
}

export function withSessionMode(meta: GooseMetadata, mode: GooseMode): GooseMetadata {
  return withState(meta, { goose_mode: mode });
}

/** A tool call waiting for a decision, as shown to callers. */
export interface PendingApproval {
  readonly id: string;
  readonly toolName: string;
  readonly arguments: Record<string, unknown>;
  readonly prompt: string;
}

/** What a paused reply waits on: its request id and the undecided tool calls. */
export interface PausedRun {
  readonly requestId: string;
  readonly pending: readonly PendingApproval[];
  /** When it paused (ms since the epoch): a restarted process re-arms SKEIN_APPROVAL_TIMEOUT_MS from it. */
  readonly pausedAt?: number;
}

/** The paused reply recorded in the metadata (kept in step with the history by the run), if any. */
export function pausedRun(meta: GooseMetadata): PausedRun | undefined {
  const a = stateOf(meta).approvals;
  if (!isObject(a) || typeof a.request_id !== "string" || !Array.isArray(a.pending)) return undefined;
  const pending = a.pending.filter(isObject).map((p) => ({
    id: String(p.id ?? ""),
    toolName: String(p.tool_name ?? ""),
    arguments: isObject(p.arguments) ? p.arguments : {},
    prompt: typeof p.prompt === "string" ? p.prompt : "",
  }));
  if (pending.length === 0) return undefined;
  return { requestId: a.request_id, pending, ...(typeof a.paused_at === "number" ? { pausedAt: a.paused_at } : {}) };
}

export function withPausedRun(meta: GooseMetadata, run: PausedRun | undefined): GooseMetadata {
  const approvals = run && {
    request_id: run.requestId,
    pending: run.pending.map((p) => ({ id: p.id, tool_name: p.toolName, arguments: p.arguments, prompt: p.prompt })),
    ...(run.pausedAt !== undefined ? { paused_at: run.pausedAt } : {}),
  };
  return withState(meta, { approvals });
}

/**
 * Decisions of the paused turn, tool call id → goose's Permission: what
 * Session.pending_approvals leaves out, and the only record of them where
 * the history cannot hold one (goose ≤ 1.9's JSONL knows no decision message).
 */
export function keptDecisions(meta: GooseMetadata): Record<string, unknown> {
  const a = stateOf(meta).approvals;
  return isObject(a) && isObject(a.decisions) ? a.decisions : {};
}

export function withKeptDecision(meta: GooseMetadata, id: string, permission: string): GooseMetadata {
  const a = stateOf(meta).approvals;
  if (!isObject(a)) return meta;
  return withState(meta, { approvals: { ...a, decisions: { ...keptDecisions(meta), [id]: permission } } });
}
