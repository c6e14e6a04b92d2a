import { findOnPath } from "@skein/host";
import type { Logger } from "pino";

/** How often the PATH is looked at again: a stat per PATH entry, no process started. */
const RECHECK_MS = 5_000;

/**
 * Whether the fleet can start agents at all: tmux must be on the service's
 * PATH (it is looked up at each call, like the old launcher did). Reported to
 * health at start and whenever it changes (tmux installed or removed while
 * the service runs); each change is logged once.
 */
export class TmuxAvailability {
  private timer: NodeJS.Timeout | undefined;
  private available: boolean | undefined;

  constructor(
    private readonly log: Logger,
    private readonly onChange: (available: boolean) => void,
    private readonly path: () => string | undefined = () => process.env.PATH,
  ) {}

  start(): void {
    this.check();
    this.timer ??= setInterval(() => this.check(), RECHECK_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const found = findOnPath("tmux", this.path());
    const available = found !== undefined;
    if (available === this.available) return;
    const first = this.available === undefined;
    this.available = available;
    if (!available) {
      this.log.error(
        { path: this.path() },
        "tmux is not on the fleet service's PATH: it cannot start agents, so health says NOT_SERVING until tmux appears (looked for every 5 s)",
      );
    } else if (!first) {
      this.log.info({ tmux: found }, "tmux found on PATH again; serving");
    }
    this.onChange(available);
  }
}
