import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { makeDirectory, writeAtomic } from "@skein/host";
import { sleep } from "@skein/runtime";
import type { Logger } from "pino";
import { endsWithDeadPaneLine, lastLines } from "./screen-text.js";
import { TmuxError, type Tmux } from "./tmux.js";

const LOOK_EVERY_MS = 50;
/** How long to wait for tmux to see the pane's process end once its processes are gone. */
const DEAD_WAIT_MS = 2_000;
/** Captures (LOOK_EVERY_MS apart) that wait for tmux's "Pane is dead" line before the screen is kept without it. */
const DEAD_LINE_LOOKS = 10;

/**
 * The last screen of each agent whose pane ended (exited or stopped), one file
 * per agent in a directory beside the state file, so `fleet logs` still has
 * it once the pane is gone, also after the service restarted. Files are
 * replaced atomically and private (0600): agents print secrets too.
 */
export class KeptOutput {
  readonly dir: string;

  constructor(
    stateDir: string,
    private readonly tmux: Tmux,
    /** Lines kept (0: none). */
    private readonly lines: number,
    private readonly log: Logger,
  ) {
    this.dir = join(stateDir, `fleet-${tmux.socket}-output`);
  }

  private path(name: string): string {
    return join(this.dir, `${name}.txt`);
  }

  /**
   * Keeps the last lines of the agent's pane, whose processes have just
   * ended; nothing when it has no pane anymore. Waits (briefly) until tmux
   * has seen the end: only then has it read the last output and written its
   * "Pane is dead" line, which belongs to the last screen.
   */
  async keep(name: string): Promise<void> {
    if (this.lines === 0) return;
    try {
      if (!(await this.awaitDeadPane(name))) return;
      let text = "";
      for (let look = 1; ; look++) {
        text = lastLines(await this.tmux.capture(name, this.lines), this.lines);
        if (endsWithDeadPaneLine(text) || look >= DEAD_LINE_LOOKS) break;
        await sleep(LOOK_EVERY_MS);
      }
      await makeDirectory(this.dir, 0o700);
      await writeAtomic(this.path(name), text);
    } catch (err) {
      if (err instanceof TmuxError && err.isMissing) return;
      this.log.warn({ err, agent: name }, "could not keep the agent's last screen");
    }
  }

  /** False when the pane is gone; true once tmux has its exit status (or after DEAD_WAIT_MS). */
  private async awaitDeadPane(name: string): Promise<boolean> {
    const deadline = Date.now() + DEAD_WAIT_MS;
    for (;;) {
      const pane = await this.tmux.pane(name);
      if (!pane) return false;
      if ((pane.dead && (pane.deadStatus !== undefined || pane.deadSignal !== undefined)) || Date.now() > deadline) return true;
      // tmux may have missed the SIGCHLD (see Tmux.nudgeReaper).
      if (pane.dead) this.tmux.nudgeReaper(pane.serverPid);
      await sleep(LOOK_EVERY_MS);
    }
  }

  /** The last `n` lines kept, or undefined when none were kept. */
  async read(name: string, n: number): Promise<string | undefined> {
    try {
      return lastLines(await readFile(this.path(name), "utf8"), n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }
}
