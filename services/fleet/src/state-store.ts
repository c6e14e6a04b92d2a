import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { makeDirectory, writeAtomic } from "@skein/host";
import type { Logger } from "pino";
import type { AgentRecord } from "./agent.js";

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
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(
    stateDir: string,
    private readonly socket: string,
    private readonly log: Logger,
  ) {
    this.path = join(stateDir, `fleet-${socket}.json`);
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
   */
  save(records: () => AgentRecord[]): Promise<void> {
    this.dirty = true;
    if (this.writing) return this.writing;
    const loop = async () => {
      while (this.dirty) {
        this.dirty = false;
        const file: StateFile = { version: 1, socket: this.socket, agents: records() };
        try {
          await makeDirectory(dirname(this.path), 0o700);
          await writeAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
        } catch (err) {
          this.log.error({ err, path: this.path }, "could not write the state file");
        }
      }
      this.writing = undefined;
    };
    this.writing = loop();
    return this.writing;
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
