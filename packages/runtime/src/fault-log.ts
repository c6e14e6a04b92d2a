import type { Logger } from "pino";

/** At most one summary line per kind in this window while faults go on. */
export const FAULT_SUMMARY_EVERY_MS = 60_000;

/**
 * Bounded logging of a fault that a timer keeps retrying (heartbeat writes,
 * state writes, LISTEN reconnects, lease sweeps): the first failure is logged
 * at warn with its cause, later ones are only counted and summed up at most
 * once a minute ("heartbeat writes failing for 5 agents: ENOSPC …"), and one
 * line says when every subject works again. `subject` tells apart the things
 * that fail (an agent, a file); one instance serves one kind of work.
 * No timer of its own: summaries are written by the failures that continue.
 */
export class RepeatedFaults {
  private readonly failing = new Map<string, string>();
  private failures = 0;
  private since = 0;
  private lastLineAt = 0;

  constructor(
    private readonly log: Logger,
    /** What fails, plural, e.g. "heartbeat writes". */
    private readonly kind: string,
    /** What the subjects are, plural, e.g. "agents". */
    private readonly subjects = "subjects",
    private readonly now: () => number = Date.now,
    private readonly everyMs = FAULT_SUMMARY_EVERY_MS,
  ) {}

  /** A failure of `subject`; `fields` go on the first line only. */
  failed(subject: string, err: unknown, fields: Record<string, unknown> = {}): void {
    const reason = reasonOf(err);
    const first = this.failing.size === 0;
    this.failing.set(subject, reason);
    this.failures++;
    const t = this.now();
    if (first) {
      this.since = t;
      this.lastLineAt = t;
      this.log.warn({ ...fields, subject, reason }, `${this.kind} failing: ${reason}`);
      return;
    }
    if (t - this.lastLineAt < this.everyMs) return;
    this.lastLineAt = t;
    this.log.warn(
      { failing: this.failing.size, failures: this.failures, sinceMs: t - this.since, reason },
      `${this.kind} failing for ${this.failing.size} ${this.failing.size === 1 ? singular(this.subjects) : this.subjects}: ${reason} (${this.failures} failures in ${Math.round((t - this.since) / 1000)} s)`,
    );
  }

  /** `subject` worked; once none is failing, one line says so. */
  succeeded(subject: string): void {
    if (!this.failing.delete(subject) || this.failing.size > 0) return;
    this.log.info({ failures: this.failures, sinceMs: this.now() - this.since }, `${this.kind}: working again after ${this.failures} failures`);
    this.failures = 0;
  }

  /** A subject that is gone (a stopped agent) is no longer failing, without a recovery line of its own. */
  forget(subject: string): void {
    this.failing.delete(subject);
    if (this.failing.size === 0) this.failures = 0;
  }

  get failingCount(): number {
    return this.failing.size;
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

function singular(plural: string): string {
  return plural.endsWith("s") ? plural.slice(0, -1) : plural;
}
