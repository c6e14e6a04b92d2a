import { execFile } from "node:child_process";
import { tmuxCallSeconds } from "./metrics.js";
import { signalProcess } from "@skein/host";
import { FailedPreconditionError } from "@skein/runtime";

/** A tmux call that ran but failed; `stderr` is tmux's own message. */
export class TmuxError extends Error {
  constructor(
    readonly subcommand: string,
    readonly stderr: string,
  ) {
    super(`tmux ${subcommand} failed: ${stderr || "no message"}`);
  }

  /** The server, session or pane does not exist (anymore). */
  get isMissing(): boolean {
    return /no server running|error connecting to|can't find (session|window|pane)|session not found|no such file/i.test(this.stderr);
  }
}

export interface PaneInfo {
  readonly session: string;
  readonly paneId: string;
  readonly panePid: number;
  readonly dead: boolean;
  /** Set once tmux has reaped a pane that exited normally. */
  readonly deadStatus: number | undefined;
  /** Set once tmux has reaped a pane killed by a signal. */
  readonly deadSignal: number | undefined;
  readonly currentPath: string;
  /** The tmux server's own pid. */
  readonly serverPid: number;
  readonly startCommand: string;
}

/** pane_start_command is last: it may hold tabs. */
const PANE_FORMAT = ["session_name", "pane_id", "pane_pid", "pane_dead", "pane_dead_status", "pane_dead_signal", "pane_current_path", "pid", "pane_start_command"]
  .map((f) => `#{${f}}`)
  .join("\t");

const TMUX_DEFAULT_HISTORY = 2000;

/** `-t =name` is an exact match; a bare name would also hit every session it prefixes. */
const sessionTarget = (name: string) => `=${name}`;
const paneTarget = (name: string) => `=${name}:`;

/**
 * tmux expands formats (including `#(shell command)`) in -c directories: a
 * literal `#` must be doubled or a workdir could run commands.
 */
export function escapeFormat(value: string): string {
  return value.replaceAll("#", "##");
}

/**
 * tmux splits its argv into commands at arguments ending in `;`; `\;` at the
 * end stands for a literal `;` (and only the last backslash is consumed).
 */
export function escapeTrailingSemicolon(arg: string): string {
  return arg.endsWith(";") ? `${arg.slice(0, -1)}\\;` : arg;
}

/** Environment for tmux clients: never let an outer tmux ($TMUX) redirect or nest our calls. */
function clientEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TMUX;
  delete env.TMUX_PANE;
  return env;
}

/**
 * The fleet's tmux server on its own socket. Every call is `tmux -L <socket> …`
 * through execFile (argv, never a shell), with tmux looked up on PATH at call time.
 */
export class Tmux {
  /**
   * `keepLines`: history new panes must hold. Above tmux's default (2000)
   * the server-wide history-limit is raised as each session is made (it
   * applies to panes created after it is set).
   */
  constructor(
    readonly socket: string,
    private readonly keepLines = 0,
  ) {}

  run(args: readonly string[]): Promise<string> {
    const endTimer = tmuxCallSeconds.startTimer({ subcommand: args[0] ?? "" });
    return new Promise((resolve, reject) => {
      execFile("tmux", ["-L", this.socket, ...args], { env: clientEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        endTimer();
        if (!err) return resolve(stdout);
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          return reject(new FailedPreconditionError(`tmux is not installed or not on the fleet service's PATH; it is needed to run agents (socket ${this.socket})`));
        }
        reject(new TmuxError(args[0] ?? "", String(stderr).trim()));
      });
    });
  }

  /**
   * Sends the tmux server a SIGCHLD so it reaps panes whose exit it missed
   * (seen with tmux 3.3a when panes exit at the same moment: dead, zombie,
   * no #{pane_dead_status} until the next SIGCHLD arrives). `serverPid` is
   * PaneInfo.serverPid of the pane just looked at.
   */
  nudgeReaper(serverPid: number): void {
    // False when the server is gone; the next look at the pane will say so.
    signalProcess(serverPid, "SIGCHLD");
  }

  /**
   * Creates the agent's session and, in the same tmux command sequence (so
   * before tmux can notice the command exiting), sets remain-on-exit on that
   * window only: even a command that dies at once leaves its exit status.
   */
  async newSession(name: string, workdir: string, shellCommand: string): Promise<{ paneId: string; panePid: number }> {
    const history = this.keepLines > TMUX_DEFAULT_HISTORY ? ["set-option", "-g", "history-limit", String(this.keepLines), ";"] : [];
    const out = await this.run([
      ...history,
      "new-session", "-d", "-s", name, "-c", escapeFormat(workdir), "-P", "-F", "#{pane_id} #{pane_pid}", escapeTrailingSemicolon(shellCommand),
      ";", "set-option", "-w", "-t", paneTarget(name), "remain-on-exit", "on",
    ]);
    return parsePaneIdPid("new-session", out);
  }

  /** Runs the command again in the agent's (dead) pane; pane id and window options stay. */
  async respawn(name: string, workdir: string, shellCommand: string): Promise<{ paneId: string; panePid: number }> {
    const out = await this.run([
      "respawn-pane", "-k", "-t", paneTarget(name), "-c", escapeFormat(workdir), escapeTrailingSemicolon(shellCommand),
      ";", "display-message", "-p", "-t", paneTarget(name), "#{pane_id} #{pane_pid}",
    ]);
    return parsePaneIdPid("respawn-pane", out);
  }

  /** Runs a call whose target may not exist: then `missing` is the answer instead of an error. */
  private async unlessMissing<T>(args: readonly string[], ok: (stdout: string) => T, missing: T): Promise<T> {
    try {
      return ok(await this.run(args));
    } catch (err) {
      if (err instanceof TmuxError && err.isMissing) return missing;
      throw err;
    }
  }

  /** The agent's pane, or undefined when its session (or the server) is gone. */
  pane(name: string): Promise<PaneInfo | undefined> {
    return this.unlessMissing(["list-panes", "-t", paneTarget(name), "-F", PANE_FORMAT], (out) => parsePanes(out)[0], undefined);
  }

  /** The first pane of every session on the socket (none when no server runs). */
  async sessions(): Promise<PaneInfo[]> {
    const out = await this.unlessMissing(["list-panes", "-a", "-F", PANE_FORMAT], (o) => o, "");
    const first = new Map<string, PaneInfo>();
    for (const p of parsePanes(out)) if (!first.has(p.session)) first.set(p.session, p);
    return [...first.values()];
  }

  /** Kills the session; false when it did not exist. */
  killSession(name: string): Promise<boolean> {
    return this.unlessMissing(["kill-session", "-t", sessionTarget(name)], () => true, false);
  }

  /** Types text literally (no key names, no format expansion). */
  async sendLiteral(name: string, text: string): Promise<void> {
    await this.run(["send-keys", "-t", paneTarget(name), "-l", "--", escapeTrailingSemicolon(text)]);
  }

  async sendEnter(name: string): Promise<void> {
    await this.run(["send-keys", "-t", paneTarget(name), "Enter"]);
  }

  /** The last `lines` lines of the pane, wrapped lines joined. */
  async capture(name: string, lines: number): Promise<string> {
    return this.run(["capture-pane", "-p", "-J", "-S", `-${lines}`, "-t", paneTarget(name)]);
  }
}

function parsePaneIdPid(subcommand: string, out: string): { paneId: string; panePid: number } {
  const m = /^(%\d+) (\d+)$/m.exec(out.trim());
  if (!m) throw new TmuxError(subcommand, `unexpected output ${JSON.stringify(out)}`);
  return { paneId: m[1]!, panePid: Number(m[2]) };
}

const optionalInt = (s: string | undefined) => (s === undefined || s === "" ? undefined : Number(s));

export function parsePanes(out: string): PaneInfo[] {
  const panes: PaneInfo[] = [];
  for (const line of out.split("\n")) {
    if (line === "") continue;
    const f = line.split("\t");
    if (f.length < 9) continue;
    panes.push({
      session: f[0]!,
      paneId: f[1]!,
      panePid: Number(f[2]),
      dead: f[3] === "1",
      deadStatus: optionalInt(f[4]),
      deadSignal: optionalInt(f[5]),
      currentPath: f[6]!,
      serverPid: Number(f[7]),
      startCommand: f.slice(8).join("\t"),
    });
  }
  return panes;
}
