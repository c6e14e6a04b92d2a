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

/**
 * pane_start_command is last: it may hold tabs. pane_current_path is read from
 * the pane process's cwd and is empty for a moment after a pane starts (seen
 * under load); the session's -c directory stands in for it then.
 */
const PANE_FORMAT = [
  "#{session_name}",
  "#{pane_id}",
  "#{pane_pid}",
  "#{pane_dead}",
  "#{pane_dead_status}",
  "#{pane_dead_signal}",
  "#{?pane_current_path,#{pane_current_path},#{session_path}}",
  "#{pid}",
  "#{pane_start_command}",
].join("\t");

const TMUX_DEFAULT_HISTORY = 2000;

/** `-t =name` is an exact match; a bare name would also hit every session it prefixes. */
const sessionTarget = (name: string) => `=${name}`;
export const paneTarget = (name: string) => `=${name}:`;

/**
 * tmux expands formats (including `#(shell command)`) in -c directories: a
 * literal `#` must be doubled or a workdir could run commands.
 */
export function escapeFormat(value: string): string {
  return value.replaceAll("#", "##");
}

/**
 * tmux splits its argv into commands at arguments ending in `;`; `\;` at the
 * end stands for a literal `;` (only that last backslash is consumed, so a
 * value ending in `\;` becomes `\\;`). Applied to every argument of every
 * call, so no value (workdir, env, text, command) can end a command early.
 */
export function escapeTrailingSemicolon(arg: string): string {
  return arg.endsWith(";") ? `${arg.slice(0, -1)}\\;` : arg;
}

/**
 * The most a tmux client can send the server in one call: the arguments after
 * the global options, each with its NUL, packed into one 16 KiB imsg (tmux 3.x:
 * MAX_IMSGSIZE 16384 - 16 header - 4 argc). Beyond it tmux says "failed to
 * send command" or "command too long"; the kernel's limit (128 KiB per
 * argument) comes later.
 */
export const MAX_COMMAND_BYTES = 16_364;

/** Bytes the tmux client sends for these commands (joined by `;` arguments). */
export function commandBytes(commands: readonly (readonly string[])[]): number {
  let n = 2 * (commands.length - 1); // each ";" between commands, with its NUL
  for (const c of commands) for (const a of c) n += Buffer.byteLength(escapeTrailingSemicolon(a)) + 1;
  return n;
}

/** tmux is not on the service's PATH (TmuxAvailability reports that, and health follows it). */
export class TmuxMissingError extends FailedPreconditionError {}

/**
 * The fleet's tmux server on its own socket. Every call is `tmux -L <socket> …`
 * through execFile (argv, never a shell), with tmux looked up on PATH at call
 * time, and with `env` only: a server this starts holds nothing else in its
 * global environment, which every pane inherits.
 */
export class Tmux {
  /**
   * `keepLines`: history new panes must hold (see newSessionCommands).
   */
  constructor(
    readonly socket: string,
    /** The environment every tmux call (and a server it starts) gets. */
    readonly env: Readonly<Record<string, string>>,
    private readonly keepLines = 0,
  ) {}

  run(args: readonly string[]): Promise<string> {
    return this.runSequence([args]);
  }

  /** Several commands in one tmux call (one after another in the server, nothing between them). */
  runSequence(commands: readonly (readonly string[])[]): Promise<string> {
    const argv = commands.flatMap((c, i) => [...(i > 0 ? [";"] : []), ...c.map(escapeTrailingSemicolon)]);
    const subcommand = commands[0]?.[0] ?? "";
    const endTimer = tmuxCallSeconds.startTimer({ subcommand });
    return new Promise((resolve, reject) => {
      execFile("tmux", ["-L", this.socket, ...argv], { env: this.env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        endTimer();
        if (!err) return resolve(stdout);
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          return reject(new TmuxMissingError(`tmux is not installed or not on the fleet service's PATH; it is needed to run agents (socket ${this.socket})`));
        }
        reject(new TmuxError(subcommand, String(stderr).trim()));
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
    return parsePaneIdPid("new-session", await this.runSequence(newSessionCommands(name, workdir, shellCommand, this.keepLines)));
  }

  /** Runs the command again in the agent's (dead) pane; pane id and window options stay. */
  async respawn(name: string, workdir: string, shellCommand: string): Promise<{ paneId: string; panePid: number }> {
    return parsePaneIdPid("respawn-pane", await this.runSequence(respawnCommands(name, workdir, shellCommand)));
  }

  /**
   * Removes from the server's global environment (or from a session's, which
   * its panes get on top) every variable a server of ours would not have been
   * started with: a server left by an older service, or started by hand, may
   * hold that process's secrets, and a session made by another client holds
   * that client's SSH_AUTH_SOCK, KRB5CCNAME and the like (tmux's
   * update-environment). Resolves with the names removed.
   */
  async cleanEnvironment(session?: string): Promise<string[]> {
    // (PWD in the global environment is tmux's own: it adds it at every server start.)
    const scope = session === undefined ? ["-g"] : ["-t", sessionTarget(session)];
    const out = await this.unlessMissing(["show-environment", ...scope], (o) => o, "");
    const extra = out
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("-"))
      .map((l) => (l.includes("=") ? l.slice(0, l.indexOf("=")) : l))
      .filter((name) => !(name in this.env) && !(session === undefined && name === TMUX_OWN_GLOBAL));
    let batch: string[][] = [];
    for (const name of extra) {
      const cmd = ["set-environment", ...scope, "-u", name];
      if (batch.length > 0 && commandBytes([...batch, cmd]) > MAX_COMMAND_BYTES) {
        await this.runSequence(batch);
        batch = [];
      }
      batch.push(cmd);
    }
    if (batch.length > 0) await this.runSequence(batch);
    return extra;
  }

  /** Runs a call whose target may not exist: then `missing` is the answer instead of an error. */
  async unlessMissing<T>(args: readonly string[], ok: (stdout: string) => T, missing: T): Promise<T> {
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

  /**
   * Types text literally (no key names, no format expansion), in pieces that
   * each fit in one tmux command (MAX_COMMAND_BYTES), one after another.
   */
  async sendLiteral(name: string, text: string): Promise<void> {
    for (const piece of pieces(text, SEND_PIECE_CHARS)) await this.run(["send-keys", "-t", paneTarget(name), "-l", "--", piece]);
  }

  async sendEnter(name: string): Promise<void> {
    await this.run(["send-keys", "-t", paneTarget(name), "Enter"]);
  }

  /** The last `lines` lines of the pane, wrapped lines joined. */
  async capture(name: string, lines: number): Promise<string> {
    return this.run(["capture-pane", "-p", "-J", "-S", `-${lines}`, "-t", paneTarget(name)]);
  }
}

/** Characters per send-keys call: at most 4 bytes each in UTF-8, so a piece stays below MAX_COMMAND_BYTES. */
const SEND_PIECE_CHARS = 4_000;

/** Splits text into pieces of at most `n` code points (never inside a surrogate pair). */
export function pieces(text: string, n: number): string[] {
  const out: string[] = [];
  let cur = "";
  let count = 0;
  for (const ch of text) {
    if (count === n) {
      out.push(cur);
      cur = "";
      count = 0;
    }
    cur += ch;
    count++;
  }
  if (cur !== "") out.push(cur);
  return out;
}

/**
 * tmux sets PWD (its working directory at start) in every new server's global
 * environment itself: not something a server of ours was started with, but
 * not foreign either, so removing it would warn on every restart beside a
 * running server and change nothing.
 */
const TMUX_OWN_GLOBAL = "PWD";

/**
 * Keeps an agent's last output when it exits right after writing it. tmux
 * before 3.7 (fixed upstream in 9e3653a, GitHub issue 4807) marks a pane dead as
 * soon as it reaps the process, discarding output still unread in the pty
 * (an agent's `echo error; exit 1` lost its error line about once in 40
 * under load), unless a pipe-pane is open: then it first reads the pty dry
 * (FIONREAD) and hands everything to the pipe. So every agent pane gets a
 * pipe whose reader discards it (one `cat` per pane; it ends when the pane is removed).
 */
function drainPipeCommand(name: string): string[] {
  return ["pipe-pane", "-O", "-t", paneTarget(name), "exec cat >/dev/null"];
}

/**
 * What newSession sends: the session and, in the same call (before tmux can
 * notice the command exiting), remain-on-exit on its window and the pipe
 * that keeps its last output (drainPipeCommand). A pane's history-limit is
 * fixed when the pane is made: when `keepLines` needs more than tmux's
 * default, the server-wide limit is raised first, in the same call (it may be
 * the one that starts the server).
 */
export function newSessionCommands(name: string, workdir: string, shellCommand: string, keepLines = 0): string[][] {
  return [
    ...(keepLines > TMUX_DEFAULT_HISTORY ? [["set-option", "-g", "history-limit", String(keepLines)]] : []),
    ["new-session", "-d", "-s", name, "-c", escapeFormat(workdir), "-P", "-F", "#{pane_id} #{pane_pid}", shellCommand],
    ["set-option", "-w", "-t", paneTarget(name), "remain-on-exit", "on"],
    drainPipeCommand(name),
  ];
}

/** What respawn sends: the new run, its output pipe (replacing the last run's) and, in the same call, its pane id and pid. */
export function respawnCommands(name: string, workdir: string, shellCommand: string): string[][] {
  return [
    ["respawn-pane", "-k", "-t", paneTarget(name), "-c", escapeFormat(workdir), shellCommand],
    drainPipeCommand(name),
    ["display-message", "-p", "-t", paneTarget(name), "#{pane_id} #{pane_pid}"],
  ];
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
