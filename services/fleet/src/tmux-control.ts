import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

/** How the control client attaches: read-only, none of the panes' output, no say in window sizes. */
export const CONTROL_FLAGS = "no-output,ignore-size";

/** util-linux's setpriv, for --pdeathsig (absent: the client is left to close() and to sweepControlClients()). */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

interface Pending {
  resolve(out: string): void;
  reject(err: Error): void;
}

/** A command that ran through the control client and failed: tmux's own message. */
export class TmuxControlError extends Error {}

/**
 * One long-lived tmux control-mode client (`tmux -C`), so a command asked
 * every second (the activity tracker's list-panes) costs the tmux server a
 * line on a pipe instead of forking and executing a tmux client each time.
 * It attaches read-only, without output and without a say in window sizes
 * (`-r -f no-output,ignore-size`) to one of the agents' sessions, since a
 * control client needs a session; when that session ends the client exits,
 * and the next call attaches to another. run() answers undefined when no
 * client can be had (no session to attach to): the caller forks as before.
 */
export class TmuxControl {
  private proc: ChildProcessWithoutNullStreams | undefined;
  /** Blocks awaited, in order: the first is the attach command's own. */
  private pending: Pending[] = [];
  private block: string[] | undefined;

  constructor(
    private readonly socket: string,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  /** Runs one tmux command (already quoted for tmux's parser); `session` is where a new client attaches. */
  async run(command: string, session: () => string | undefined): Promise<string | undefined> {
    if (!this.proc) {
      const target = session();
      if (target === undefined) return undefined;
      if (!(await this.attach(target))) return undefined;
    }
    const proc = this.proc!;
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      proc.stdin.write(`${command}\n`);
    });
  }

  /** Starts a client on `session`; false when it could not attach (the session went away meanwhile). */
  private async attach(session: string): Promise<boolean> {
    const tmux = ["tmux", "-L", this.socket, "-C", "attach-session", "-r", "-f", CONTROL_FLAGS, "-t", `=${session}`];
    // Ends with the service, even a killed one: an orphaned control client keeps the tmux server from exiting on kill-server.
    const [file, ...args] = SETPRIV ? [SETPRIV, "--pdeathsig", "TERM", "--", ...tmux] : tmux;
    const proc = spawn(file!, args, { env: this.env, stdio: ["pipe", "pipe", "pipe"] });
    this.proc = proc;
    this.block = undefined;
    const attached = new Promise<boolean>((resolve) => this.pending.push({ resolve: () => resolve(true), reject: () => resolve(false) }));
    createInterface({ input: proc.stdout }).on("line", (line) => this.line(line));
    proc.stderr.resume();
    proc.stdin.on("error", () => undefined); // a write after it exited: the exit handler answers
    proc.once("error", () => this.ended(proc));
    proc.once("exit", () => this.ended(proc));
    return attached;
  }

  private line(line: string): void {
    if (this.block === undefined) {
      // Between blocks come notifications (%session-changed, %exit, …): none is awaited.
      if (line.startsWith("%begin ")) this.block = [];
      return;
    }
    if (line.startsWith("%end ") || line.startsWith("%error ")) {
      const out = this.block;
      this.block = undefined;
      const p = this.pending.shift();
      if (line.startsWith("%end ")) p?.resolve(out.length > 0 ? `${out.join("\n")}\n` : "");
      else p?.reject(new TmuxControlError(out.join("\n") || "tmux command failed"));
      return;
    }
    this.block.push(line);
  }

  /** The client exited (its session ended, the server went away): what was awaited fails, the next call attaches anew. */
  private ended(proc: ChildProcessWithoutNullStreams): void {
    if (this.proc !== proc) return;
    this.proc = undefined;
    this.block = undefined;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(new TmuxControlError("tmux control client ended"));
  }

  close(): void {
    const proc = this.proc;
    if (!proc) return;
    this.ended(proc);
    proc.stdin.end();
    proc.kill("SIGTERM");
  }
}
