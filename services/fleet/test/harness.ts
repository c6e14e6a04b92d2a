import { execFileSync } from "node:child_process";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveStartTicks } from "@skein/host";
import { fleet } from "@skein/proto";
import { call, closeClients, connect, killTmuxServer, md, startService, type ServiceProcess } from "@skein/testkit";

export const TMUX = "/usr/bin/tmux";

/**
 * One fleet service on a throw-away tmux socket with its own heartbeat and
 * state directories. cleanup() kills the service and the tmux server and
 * removes the directories, whatever state the test left them in.
 */
export class FleetHarness {
  readonly dir = mkdtempSync(join(tmpdir(), "skein-fleet-"));
  readonly socket = `skein-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly hbDir = join(this.dir, "hb");
  readonly stateDir = join(this.dir, "state");
  readonly work = join(this.dir, "work");
  svc: ServiceProcess | undefined;
  client!: fleet.FleetServiceClient;

  /** Added to the service's environment at start(); tests may fill it after construction. */
  readonly extraEnv: Record<string, string | undefined> = {};

  constructor() {
    mkdirSync(this.work);
  }

  env(): Record<string, string | undefined> {
    return { SKEIN_TMUX_SOCKET: this.socket, SKEIN_HEARTBEAT_DIR: this.hbDir, SKEIN_FLEET_STATE_DIR: this.stateDir, SKEIN_SHUTDOWN_GRACE_MS: "3000", ...this.extraEnv };
  }

  async start(): Promise<this> {
    this.svc = await startService("fleet", this.env());
    this.client = connect(fleet.FleetServiceClient, this.svc.address);
    return this;
  }

  /** Stops the service (agents keep running) and starts a new one on the same socket and state. */
  async restart(): Promise<void> {
    await this.svc?.stop("SIGTERM");
    await this.start();
  }

  /** The token the service was given (SKEIN_AUTH_TOKEN in extraEnv), sent with the harness's own calls. */
  private metadata() {
    return md({ token: this.extraEnv.SKEIN_AUTH_TOKEN });
  }

  startAgent(req: Partial<fleet.StartAgentRequest>): Promise<fleet.StartAgentResponse> {
    return call(this.client, this.client.startAgent, fleet.StartAgentRequest.fromPartial({ workdir: this.work, runtime: "test", ...req }), this.metadata());
  }

  getAgent(name: string): Promise<fleet.Agent> {
    return call(this.client, this.client.getAgent, { name }, this.metadata()).then((r) => r.agent!);
  }

  stopAgent(name: string, graceSeconds: number): Promise<fleet.Agent> {
    return call(this.client, this.client.stopAgent, { name, graceSeconds }, this.metadata()).then((r) => r.agent!);
  }

  /**
   * Resolves once the service has written a heartbeat stamped later than `at`
   * (epoch ms) for a "clock" agent it beats every second (started here, once):
   * proof that the service's supervisor ran past that moment. Tests of what
   * must NOT happen by a time (a restart that was due, a beat that would have
   * been due) wait on this instead of a fixed sleep.
   */
  async beatPast(at: number): Promise<void> {
    const file = join(this.hbDir, "clock.hb");
    if (!this.clockStarted) {
      await this.startAgent({ name: "clock", command: "sleep 300", heartbeatIntervalSeconds: 1 });
      this.clockStarted = true;
    }
    // Heartbeat times are rounded down to the second: one stamped at or after `at` was written after it.
    await waitFor(`a heartbeat after ${new Date(at).toISOString()}`, () => Date.parse(readHeartbeat(file).ts ?? "") >= at);
  }

  private clockStarted = false;

  /** Session names on the socket; none when no tmux server runs there. */
  sessions(): string[] {
    try {
      return this.tmux("list-sessions", "-F", "#{session_name}").split("\n").filter(Boolean).sort();
    } catch {
      return [];
    }
  }

  tmux(...args: string[]): string {
    // stderr captured (it is in the thrown error): "no server running on …" must not reach the test output.
    return execFileSync(TMUX, ["-L", this.socket, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }

  async cleanup(): Promise<void> {
    closeClients();
    await this.svc?.stop("SIGKILL");
    // (testkit removes the lock of the SIGKILLed service.)
    killTmuxServer(this.socket);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls until fn returns a value that is not undefined/false, or throws with the last seen value. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A process that exists and is not a zombie (an orphaned zombie waits for init to reap it; it runs nothing). */
export function pidAlive(pid: number): boolean {
  return liveStartTicks(pid) !== undefined;
}

/** Pids whose session id is sid (everything a pane started). */
export function sessionPids(sid: number): number[] {
  const out = execFileSync("ps", ["-e", "-o", "pid=,sid=,stat="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && Number(f[1]) === sid && !f[2]!.startsWith("Z"))
    .map((f) => Number(f[0]));
}

/** A heartbeat file as key → value. */
export function readHeartbeat(file: string): Record<string, string> {
  return Object.fromEntries(readFileSync(file, "utf8").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
}

export interface ReceivedPost {
  readonly raw: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * A local HTTP server standing in for a webhook receiver: it records each
 * POST and answers the i-th with status(i). close() ends it and its connections.
 */
export async function webhookReceiver(status: (i: number) => number = () => 204): Promise<{ url: string; posts: ReceivedPost[]; close(): Promise<void> }> {
  const posts: ReceivedPost[] = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      posts.push({ raw, headers: req.headers });
      res.writeHead(status(posts.length - 1)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    posts,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
