import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { ActivityName, Agent } from "./agent.js";
import type { PromptTable } from "./prompts.js";
import type { PaneWatch } from "./pane-watch.js";
import { TmuxMissingError } from "./tmux.js";

export interface ActivityDeps {
  readonly tmux: Pick<PaneWatch, "activityTimes" | "screens">;
  readonly prompts: PromptTable;
  /** No output change for this long (and no prompt) is idle. */
  readonly idleAfterMs: number;
  readonly log: Logger;
  readonly agents: () => Iterable<Agent>;
  /** The agent's reported activity changed (a.activity, a.activitySince, a.waitingFor are set). */
  readonly changed: (a: Agent, message: string) => void;
  readonly intervalMs?: number;
}

/** A state must be seen this many checks in a row before it is reported. */
export const HYSTERESIS_CHECKS = 2;
/** Screen changes this soon after an agent's own signal belong to what it signalled about. */
const SIGNAL_SETTLE_MS = 2_000;
/** Failed checks are logged at most this often (one tmux fault, every second, would flood the log). */
const FAILURE_LOG_EVERY_MS = 60_000;

/**
 * Which agent works, which waits for a person, which sits idle. Trust, in
 * order: the agent's own word (skein-fleet-signal), a recognised prompt at
 * the bottom of its pane, the pane's output changing. The whole fleet costs
 * one `tmux list-panes -a` per interval; screens are captured (in batches)
 * only for panes whose output time moved since their last capture, or that
 * sit on a prompt. A state must hold for two checks before it is reported,
 * so a screen redrawn once is not "working" and a prompt scrolling by is not
 * "waiting".
 */
export class ActivityTracker {
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private lastFailureLogAt = 0;
  private failuresSinceLog = 0;

  constructor(private readonly d: ActivityDeps) {}

  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.d.intervalMs ?? 1_000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look at the whole fleet; a check still running makes this one a no-op. */
  async check(now = Date.now()): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const times = await this.d.tmux.activityTimes(() => this.anyRunning());
      const toCapture: Agent[] = [];
      for (const a of this.d.agents()) {
        if (a.state !== "running") {
          this.forget(a);
          continue;
        }
        const t = times.get(a.spec.name);
        if (!t || t.dead) continue;
        const o = a.rt.seen;
        // window_activity has one-second resolution: output later in the second of the last capture looks unmoved.
        const moved = t.activity !== o.activityTime || t.activity >= Math.floor(o.capturedAt / 1000);
        o.activityTime = t.activity;
        if (moved || o.capturedAt === 0 || a.activity === "waiting" || o.candidate === "waiting") toCapture.push(a);
        else this.observe(a, now, undefined);
      }
      if (toCapture.length === 0) return;
      const screens = await this.d.tmux.screens(toCapture.map((a) => a.spec.name));
      for (const a of toCapture) {
        const screen = screens.get(a.spec.name);
        if (screen !== undefined && a.state === "running") this.observe(a, now, screen);
      }
    } catch (err) {
      this.logFailure(err);
    } finally {
      this.checking = false;
    }
  }

  /** A session a tmux control client may attach to. */
  private anyRunning(): string | undefined {
    for (const a of this.d.agents()) if (a.state === "running") return a.spec.name;
    return undefined;
  }

  /** What one check saw of one agent; `screen` when it was captured. */
  private observe(a: Agent, now: number, screen: string | undefined): void {
    const o = a.rt.seen;
    let changed = false;
    let prompt: { text: string; onLastLine: boolean } | undefined;
    if (screen !== undefined) {
      const hash = createHash("sha1").update(screen).digest("base64");
      changed = hash !== o.screenHash;
      o.screenHash = hash;
      o.capturedAt = now;
      if (changed) o.changedAt = now;
      prompt = this.d.prompts.match(a.spec.runtime, screen);
    }
    if (o.signalledAt >= 0) {
      // The agent's own word holds until its screen moves on after it.
      if (!(changed && now - o.signalledAt > SIGNAL_SETTLE_MS)) return;
      o.signalledAt = -1;
    }
    let seen: ActivityName;
    let waitingFor = "";
    if (prompt && (!changed || prompt.onLastLine)) {
      seen = "waiting";
      waitingFor = prompt.text;
    } else if (changed || now - o.changedAt < this.d.idleAfterMs) {
      seen = "working";
    } else {
      seen = "idle";
    }
    if (seen === o.candidate) o.candidateChecks++;
    else {
      o.candidate = seen;
      o.candidateChecks = 1;
      o.candidateSince = now;
    }
    if (o.candidateChecks < HYSTERESIS_CHECKS) return;
    if (seen === a.activity) {
      if (seen === "waiting") a.waitingFor = waitingFor;
      return;
    }
    // Idle counts from the last output, not from when it was noticed.
    this.report(a, seen, waitingFor, new Date(seen === "idle" ? o.changedAt : o.candidateSince));
  }

  /**
   * The agent said what it does (skein-fleet-signal): reported at once, and it
   * holds until the pane's screen changes after it.
   */
  signal(a: Agent, activity: Exclude<ActivityName, "unknown">, message: string, now = Date.now()): void {
    const o = a.rt.seen;
    o.signalledAt = now;
    o.candidate = activity;
    o.candidateChecks = HYSTERESIS_CHECKS;
    o.candidateSince = now;
    if (activity === "working") o.changedAt = now;
    if (activity === a.activity && (activity !== "waiting" || message === a.waitingFor)) return;
    this.report(a, activity, activity === "waiting" ? message : "", new Date(now));
  }

  /**
   * Someone answered the agent (SendInput): it works on the answer. Should it
   * not react, the prompt still on its screen makes it waiting again after
   * two checks.
   */
  answered(a: Agent, now = Date.now()): void {
    const o = a.rt.seen;
    o.signalledAt = -1;
    o.changedAt = now;
    o.candidate = "working";
    o.candidateChecks = 0;
    o.candidateSince = now;
    if (a.activity !== "working") this.report(a, "working", "", new Date(now));
  }

  /** An agent that does not run does nothing: unknown, without an event (its exit or stop is the event). */
  private forget(a: Agent): void {
    if (a.activity === "unknown") return;
    a.activity = "unknown";
    a.activitySince = a.endedAt ?? new Date();
    a.waitingFor = "";
  }

  private report(a: Agent, activity: ActivityName, waitingFor: string, since: Date): void {
    a.activity = activity;
    a.activitySince = since;
    a.waitingFor = waitingFor;
    const detail = activity === "waiting" ? `waiting for a person${waitingFor ? `: ${lastLine(waitingFor)}` : ""}` : activity;
    this.d.changed(a, detail);
  }

  private logFailure(err: unknown): void {
    // No tmux on PATH is the health check's to say (once), not this loop's every minute.
    if (err instanceof TmuxMissingError) return;
    this.failuresSinceLog++;
    const now = Date.now();
    if (now - this.lastFailureLogAt < FAILURE_LOG_EVERY_MS) return;
    this.d.log.warn({ err, failures: this.failuresSinceLog }, "activity check failed (logged at most once a minute)");
    this.lastFailureLogAt = now;
    this.failuresSinceLog = 0;
  }
}

function lastLine(text: string): string {
  const lines = text.split("\n");
  return lines[lines.length - 1]!;
}
