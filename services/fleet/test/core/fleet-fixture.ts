import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@skein/runtime";
import { killTmuxServer, sealedEnv } from "@skein/testkit";
import type { AgentSnapshot, FleetEvent, FleetEventType } from "../../src/agent.js";
import { loadConfig } from "../../src/config.js";
import { Fleet, type StartRequest } from "../../src/fleet.js";
import { waitFor } from "../harness.js";

/**
 * A Fleet built in the test process (no gRPC server, no service process) on
 * a throw-away tmux socket with its own state, heartbeat and work
 * directories. Its settings come from the environment given here, never the
 * caller's. close() ends the fleet, the tmux server and the directories,
 * whatever state a test left them in.
 */
export class FleetFixture {
  readonly dir = mkdtempSync(join(tmpdir(), "skein-fleet-core-"));
  readonly socket = `skein-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly hbDir = join(this.dir, "hb");
  readonly work = join(this.dir, "work");
  readonly fleet: Fleet;
  /** Every event the fleet published since open(). */
  readonly events: FleetEvent[] = [];
  private readonly following = new AbortController();

  constructor(env: Record<string, string> = {}) {
    mkdirSync(this.work);
    // What a service under test is given (sealedEnv): the machine's basics, none of the caller's settings.
    const config = loadConfig(sealedEnv({
      HOME: this.dir,
      SKEIN_TMUX_SOCKET: this.socket,
      SKEIN_HEARTBEAT_DIR: this.hbDir,
      SKEIN_FLEET_STATE_DIR: join(this.dir, "state"),
      SKEIN_HEARTBEAT_INTERVAL: "1",
      ...env,
    }));
    this.fleet = new Fleet(config, createLogger("fleet-core-test", { destination: { write: () => true } as unknown as NodeJS.WritableStream, pretty: false }));
  }

  async open(): Promise<this> {
    await this.fleet.open();
    void (async () => {
      for await (const e of this.fleet.events.subscribe([this.following.signal], 100_000)) this.events.push(e);
    })().catch(() => undefined);
    return this;
  }

  /** Starts an agent in the work directory with the defaults a request may leave out. */
  start(name: string, command: string, more: Partial<StartRequest> = {}): ReturnType<Fleet["start"]> {
    return this.fleet.start({ name, command, workdir: this.work, runtime: "test", runtimeBinDirs: [], env: {}, restartPolicy: "never", ...more });
  }

  /** Waits until GetAgent's view of the agent satisfies ok; returns that view. */
  agentWhere(name: string, what: string, ok: (a: AgentSnapshot) => boolean, timeoutMs?: number): Promise<AgentSnapshot> {
    return waitFor(`${name}: ${what}`, () => {
      const a = this.fleet.get(name);
      return ok(a) && a;
    }, timeoutMs);
  }

  /** The events about one agent, of the given types (all when none are named). */
  eventsOf(name: string, ...types: FleetEventType[]): FleetEvent[] {
    return this.events.filter((e) => e.agent.spec.name === name && (types.length === 0 || types.includes(e.type)));
  }

  /** Waits for the n-th event of this type about the agent. */
  eventOf(name: string, type: FleetEventType, n = 1): Promise<FleetEvent> {
    return waitFor(`${name}: ${type} event #${n}`, () => this.eventsOf(name, type)[n - 1]);
  }

  /**
   * Resolves once the supervisor has ticked `count` more times: proof that the
   * moments those ticks looked at have passed (a test of what must NOT happen
   * waits on this, not on a fixed sleep).
   */
  ticksPass(count: number): Promise<number> {
    const target = this.fleet.supervisor.ticks + count;
    return waitFor(`${count} supervisor ticks`, () => this.fleet.supervisor.ticks >= target && this.fleet.supervisor.ticks);
  }

  async close(): Promise<void> {
    this.following.abort();
    await this.fleet.close().catch(() => undefined);
    killTmuxServer(this.socket);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
