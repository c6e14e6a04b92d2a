import { signalProcess } from "@skein/host";
import { CONTROL_FLAGS, TmuxControl } from "./tmux-control.js";
import { paneTarget, TmuxError, type Tmux } from "./tmux.js";

const ACTIVITY_FORMAT = "#{session_name}\t#{window_activity}\t#{pane_dead}";
/** Ends each screen in screens()' output; no program prints it by chance. */
const SCREEN_END = `@@skein-screen-end-${process.pid}-${Math.random().toString(36).slice(2)}@@`;
/** Screens per tmux call: well inside MAX_COMMAND_BYTES (names are at most 64 bytes). */
const SCREENS_PER_CALL = 50;

/**
 * What the activity tracker asks tmux about the whole fleet: every pane's
 * last-output time (each second, through one control-mode client) and the
 * screens of the few panes worth a look (batched).
 */
export class PaneWatch {
  private readonly control: TmuxControl;

  constructor(private readonly tmux: Tmux) {
    this.control = new TmuxControl(tmux.socket, tmux.env);
  }

  /**
   * tmux's last-output time (window_activity, epoch seconds) of every
   * session's first pane, in one call. `attachTo` names a session the control
   * client may attach to.
   */
  async activityTimes(attachTo?: () => string | undefined): Promise<Map<string, { activity: number; dead: boolean }>> {
    // Through the control client when one can be had (no fork a second); a failed try forks as before.
    const viaControl = attachTo && (await this.control.run(`list-panes -a -F '${ACTIVITY_FORMAT}'`, attachTo).catch(() => undefined));
    const out = viaControl ?? (await this.tmux.unlessMissing(["list-panes", "-a", "-F", ACTIVITY_FORMAT], (o) => o, ""));
    const times = new Map<string, { activity: number; dead: boolean }>();
    for (const line of out.split("\n")) {
      const [session, activity, dead] = line.split("\t");
      if (session && activity !== undefined && !times.has(session)) times.set(session, { activity: Number(activity), dead: dead === "1" });
    }
    return times;
  }

  /**
   * The visible screens of these agents' panes, in as few tmux calls as fit
   * (each screen followed by a marker line). A pane missing is left out.
   */
  async screens(names: readonly string[]): Promise<Map<string, string>> {
    const screens = new Map<string, string>();
    for (let i = 0; i < names.length; i += SCREENS_PER_CALL) {
      const batch = names.slice(i, i + SCREENS_PER_CALL);
      try {
        const out = await this.tmux.runSequence(batch.flatMap((n) => [["capture-pane", "-p", "-t", paneTarget(n)], ["display-message", "-p", SCREEN_END]]));
        const parts = out.split(`${SCREEN_END}\n`);
        batch.forEach((n, j) => parts[j] !== undefined && screens.set(n, parts[j]!));
      } catch (err) {
        if (!(err instanceof TmuxError && err.isMissing)) throw err;
        // One pane went away since it was listed (the sequence stops there): ask the others one by one.
        for (const n of batch) {
          const screen = await this.tmux.unlessMissing(["capture-pane", "-p", "-t", paneTarget(n)], (o) => o, undefined);
          if (screen !== undefined) screens.set(n, screen);
        }
      }
    }
    return screens;
  }

  /**
   * Ends control clients a previous fleet service of this socket left behind
   * (killed before it could end its own): recognised by how ours attach, so a
   * person's control client (iTerm2's `tmux -CC`) is left alone. Resolves
   * with their pids.
   */
  async sweepControlClients(): Promise<number[]> {
    const out = await this.tmux.unlessMissing(["list-clients", "-F", "#{client_pid}\t#{client_control_mode}\t#{client_readonly}\t#{client_flags}"], (o) => o, "");
    const ours = CONTROL_FLAGS.split(",");
    const pids = out
      .split("\n")
      .map((l) => l.split("\t"))
      .filter(([pid, control, readonly, flags]) => pid && control === "1" && readonly === "1" && ours.every((f) => flags?.split(",").includes(f)))
      .map(([pid]) => Number(pid));
    for (const pid of pids) signalProcess(pid, "SIGTERM");
    return pids;
  }

  /** Ends the control client, if one runs. */
  close(): void {
    this.control.close();
  }
}
