import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { makeDirectory, writeAtomic } from "@skein/host";
import { RepeatedFaults } from "@skein/runtime";
import type { Logger } from "pino";
import type { AgentRecord } from "./agent.js";

/** A failed state write is tried again after this long (and with every change meanwhile). */
const RETRY_WRITE_MS = 2_000;

interface StateFile {
  version: 1;
  socket: string;
  agents: AgentRecord[];
}

/**
 * What tmux does not remember about agents (restart policy, env, counters, the
 * pid's start time), in one small JSON file per socket, replaced atomically.
 */
export class StateStore {
  readonly path: string;
  private writing: Promise<Error | undefined> | undefined;
  private dirty = false;
  private latest: (() => AgentRecord[]) | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly faults: RepeatedFaults;

  constructor(
    stateDir: string,
    private readonly socket: string,
    private readonly log: Logger,
  ) {
    this.path = join(stateDir, `fleet-${socket}.json`);
    this.faults = new RepeatedFaults(log, "state file writes", "files");
  }

  async load(): Promise<Map<string, AgentRecord>> {
    let raw: string;
    try {
      raw = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw err;
    }
    try {
      const parsed = JSON.parse(raw) as StateFile;
      const out = new Map<string, AgentRecord>();
      for (const a of parsed.agents ?? []) out.set(a.spec.name, revive(a));
      return out;
    } catch (err) {
      // A damaged file must not keep the service down: agents are re-adopted from tmux.
      this.log.warn({ err, path: this.path }, "state file unreadable; adopting agents from tmux alone");
      return new Map();
    }
  }

  /**
   * Writes the current records. Calls while a write is in flight coalesce
   * into one more write, so the file always ends with the latest state.
   * Resolves with the error of the write that carried the caller's state
   * (undefined when it was written): the file then keeps its previous
   * content (writes replace it atomically) and a timer retries until a write
   * succeeds, so nothing is lost once space returns.
   */
  save(records: () => AgentRecord[]): Promise<Error | undefined> {
    this.dirty = true;
    this.latest = records;
    if (this.writing) return this.writing;
    clearTimeout(this.retry);
    this.retry = undefined;
    const loop = async (): Promise<Error | undefined> => {
      let failed: Error | undefined;
      while (this.dirty) {
        this.dirty = false;
        const file: StateFile = { version: 1, socket: this.socket, agents: records() };
        try {
          await makeDirectory(dirname(this.path), 0o700);
          await writeAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
          failed = undefined;
          this.faults.succeeded(this.path);
        } catch (err) {
          failed = err as Error;
          this.faults.failed(this.path, err, { path: this.path });
        }
      }
      this.writing = undefined;
      if (failed && !this.closed) {
        this.retry = setTimeout(() => void this.save(this.latest ?? records), RETRY_WRITE_MS);
        this.retry.unref();
      }
      return failed;
    };
    this.writing = loop();
    return this.writing;
  }

  /** No more retries (the service stops; its last save has been awaited). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
  }
}

function revive(a: AgentRecord): AgentRecord {
  const date = (v: unknown) => (typeof v === "string" ? new Date(v) : undefined);
  return {
    ...a,
    startedAt: date(a.startedAt) ?? new Date(),
    lastHeartbeatAt: date(a.lastHeartbeatAt),
    endedAt: date(a.endedAt),
    restartDueAt: date(a.restartDueAt),
    exitStatus: typeof a.exitStatus === "number" ? a.exitStatus : undefined,
    // Files written before activity was tracked lack these.
    activity: a.activity ?? "unknown",
    activitySince: date(a.activitySince) ?? new Date(),
    waitingFor: a.waitingFor ?? "",
    signalSecret: a.signalSecret ?? "",
  };
}
