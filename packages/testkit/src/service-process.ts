import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fleetSignalSocketPath, fleetSocketLockPath } from "@skein/host";
import { fileURLToPath } from "node:url";
import { sealedEnv } from "./sealed-env.js";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface ServiceProcess {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly address: string;
  /** Every JSON log line so far. */
  readonly logs: LogLine[];
  /** Non-JSON output (stderr included), for diagnostics. */
  readonly output: string[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Services still running, with what must be removed once each is killed. */
const running = new Map<ChildProcess, () => void>();
// Whatever a failing test leaves behind dies with the test worker.
process.on("exit", () => {
  for (const [p, cleanUp] of running) {
    p.kill("SIGKILL");
    cleanUp();
  }
});

/** A private HOME and every data directory below it, so a service under test touches nothing of the machine's. */
export function isolatedDirs(home: string): Record<string, string> {
  return {
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_STATE_HOME: join(home, ".local", "state"),
    XDG_RUNTIME_DIR: join(home, "run"),
    SKEIN_SESSIONS_DIR: join(home, "sessions"),
    SKEIN_FLEET_STATE_DIR: join(home, "state"),
    SKEIN_HEARTBEAT_DIR: join(home, "heartbeats"),
  };
}

const ADDR_VAR = { session: "SKEIN_SESSION_ADDR", fleet: "SKEIN_FLEET_ADDR" } as const;

/**
 * Starts a built service (`services/<name>/dist/main.js`) on a free loopback
 * port and resolves once it logs "listening".
 */
export async function startService(
  name: "session" | "fleet",
  env: Record<string, string | undefined> = {},
  opts: {
    expectExit?: boolean;
    /** Node options before the script, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */ nodeArgs?: readonly string[];
    /** How long to wait for "listening" (default 15 s; several services starting at once on a loaded machine need more). */
    readyTimeoutMs?: number;
  } = {},
): Promise<ServiceProcess> {
  // A service under test never touches the machine's real goose sessions,
  // goose config, fleet state or tmux socket: unless the test names its own,
  // each gets a private HOME, data directories and socket, removed at exit.
  const home = mkdtempSync(join(tmpdir(), `skein-${name}-home-`));
  const isolated = {
    ...isolatedDirs(home),
    ...(name === "fleet" ? { SKEIN_TMUX_SOCKET: `skein-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}` } : {}),
  };
  // Nothing of the caller's shell but what runs programs: only what the test sets configures the service.
  const childEnv = sealedEnv({ [ADDR_VAR[name]]: "127.0.0.1:0", SKEIN_LOG_LEVEL: "debug", ...isolated, ...env });
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), `${repoRoot}services/${name}/dist/main.js`], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // What a service cannot clean up itself when a signal kills it (SIGKILL, or
  // SIGTERM before its handlers are installed): its private home and, for a
  // fleet service, its socket lock (its shutdown or exit hook would remove it).
  const cleanUp = (killed: boolean) => {
    rmSync(home, { recursive: true, force: true });
    if (name === "fleet" && killed) {
      rmSync(fleetSocketLockPath(childEnv.SKEIN_TMUX_SOCKET!, childEnv), { force: true });
      rmSync(fleetSignalSocketPath(childEnv.SKEIN_TMUX_SOCKET!, childEnv), { force: true });
    }
  };
  running.set(proc, () => cleanUp(true));
  const exited = once(proc, "exit").then(([code, signal]) => {
    running.delete(proc);
    cleanUp(signal !== null);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  const logs: LogLine[] = [];
  const output: string[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      output.push(line);
      return;
    }
    logs.push(parsed);
    for (const w of waiters) if (w.match(parsed)) (waiters.delete(w), w.resolve(parsed));
  });
  createInterface({ input: proc.stderr! }).on("line", (line) => output.push(line));

  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (l: LogLine) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${[...output, ...logs.map((l) => JSON.stringify(l))].slice(-30).join("\n")}`));
      }, timeoutMs);
      waiters.add(w);
    });
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };

  if (opts.expectExit) return { proc, port: 0, address: "", logs, output, waitForLog, stop, exited };
  const listening = await Promise.race([
    waitForLog((l) => l.msg === "listening", opts.readyTimeoutMs),
    exited.then((e) => {
      throw new Error(`${name} exited (${JSON.stringify(e)}) before listening:\n${output.join("\n")}`);
    }),
  ]).catch(async (err: unknown) => {
    // A service that never came up is not the caller's to stop (it never got one): end it here.
    await stop("SIGKILL");
    throw err;
  });
  const port = listening.port as number;
  return { proc, port, address: `127.0.0.1:${port}`, logs, output, waitForLog, stop, exited };
}
