import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fleetSignalSocketPath, fleetSocketLockPath, isLive, readProcStatSync } from "@skein/host";
import { killTmuxServer } from "./tmux.js";
import { isolatedDirs, repoRoot } from "./service-process.js";
import { sealedEnv } from "./sealed-env.js";

/**
 * `npm start` (or start-all.mjs directly) as an operator runs it, in its own
 * process group so a test can signal or SIGKILL that group as a terminal or a
 * supervisor would. Every service gets private directories, loopback port 0
 * and a throw-away tmux socket.
 */
export interface Launcher {
  readonly proc: ChildProcess;
  /** The launcher's process group (= its pid). */
  readonly pgid: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly home: string;
  readonly tmuxSocket: string;
  readonly env: Record<string, string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout/stderr line (past or future) that matches. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The pid each service logs on its "listening" JSON line (needs JSON logs). */
  servicePids(): Map<string, number>;
  /** Signals the launcher's whole process group. */
  signalGroup(signal: NodeJS.Signals): void;
  /** Ends everything this launcher started (services by pid, tmux, files), whatever state it is in. */
  cleanup(): Promise<void>;
}

const launched = new Set<Launcher>();
process.on("exit", () => {
  for (const l of launched) void l.cleanup();
});

export function startLauncher(
  opts: { npmScript?: "start" | "start:session" | "start:fleet"; services?: readonly ("session" | "fleet")[]; env?: Record<string, string | undefined> } = {},
): Launcher {
  const home = mkdtempSync(join(tmpdir(), "skein-launcher-"));
  const tmuxSocket = `skein-launch-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const env = sealedEnv({
    ...isolatedDirs(home),
    SKEIN_TMUX_SOCKET: tmuxSocket,
    SKEIN_SESSION_ADDR: "127.0.0.1:0",
    SKEIN_FLEET_ADDR: "127.0.0.1:0",
    SKEIN_LOG_FORMAT: "json",
    ...opts.env,
  });
  const [cmd, args] = opts.npmScript
    ? ["npm", ["run", "--silent", opts.npmScript]]
    : [process.execPath, [join(repoRoot, "scripts/start-all.mjs"), ...(opts.services ?? [])]];
  const proc = spawn(cmd, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<{ match: (l: string) => boolean; resolve: (l: string) => void }>();
  const onLine = (into: string[]) => (line: string) => {
    into.push(line);
    for (const w of waiters) if (w.match(line)) (waiters.delete(w), w.resolve(line));
  };
  createInterface({ input: proc.stdout! }).on("line", onLine(stdout));
  createInterface({ input: proc.stderr! }).on("line", onLine(stderr));
  const exited = once(proc, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));

  const servicePids = () => {
    const pids = new Map<string, number>();
    for (const line of stdout) {
      const m = /^\[(\w+)\s*\] (\{.*\})$/.exec(line);
      if (!m) continue;
      try {
        const rec = JSON.parse(m[2]!) as { pid?: number; msg?: string };
        if (rec.msg === "listening" && typeof rec.pid === "number") pids.set(m[1]!, rec.pid);
      } catch {
        // not a JSON record
      }
    }
    return pids;
  };
  const launcher: Launcher = {
    proc,
    pgid: proc.pid!,
    stdout,
    stderr,
    home,
    tmuxSocket,
    env,
    exited,
    waitForLine(match, timeoutMs = 30_000) {
      const seen = [...stdout, ...stderr].find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching line within ${timeoutMs} ms; output:\n${[...stderr, ...stdout].slice(-40).join("\n")}`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    servicePids,
    signalGroup(signal) {
      try {
        process.kill(-proc.pid!, signal);
      } catch {
        // the group is gone
      }
    },
    async cleanup() {
      launched.delete(launcher);
      launcher.signalGroup("SIGKILL");
      for (const pid of servicePids().values()) {
        try {
          if (isLive(readProcStatSync(pid))) process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      killTmuxServer(tmuxSocket, env);
      rmSync(fleetSocketLockPath(tmuxSocket, env), { force: true });
      rmSync(fleetSignalSocketPath(tmuxSocket, env), { force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
  launched.add(launcher);
  return launcher;
}

/** Resolves true once none of the pids is a live process (zombies count as ended), false after timeoutMs. */
export async function processesEnd(pids: readonly number[], timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pids.every((pid) => !isLive(readProcStatSync(pid)))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
