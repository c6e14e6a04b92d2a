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
 * `seq_epochs` counts the event-numbering epochs used so far (see
 * slots/run-ownership.ts): each service instance that runs the session takes
 * the next one, so a seq never repeats across restarts.
 */
export const STATE_KEY = "skein";

interface SkeinState {
  extensions?: unknown;
  description_user_set?: unknown;
  seq_epochs?: unknown;
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
