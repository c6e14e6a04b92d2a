import { readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@skein/runtime";
import { DEFAULT_KILL_GRACE_MS, endProcessGroup } from "./end-group.js";
import { groupMembers, isLive, isSameProcess, liveStartTicks, makeDirectory, readProcStatSync, TEMP_PREFIX, writeAtomic } from "@skein/host";
import { DIR_MODE } from "@skein/goose-sessions";

/** One extension process group this instance started; pid == pgid (the child calls setsid). */
export interface RecordedProcess {
  pid: number;
  /** /proc/<pid>/stat field 22: tells this process apart from a later one given the same pid. */
  startTime: number;
  extension: string;
}

interface StateFile {
  owner: { pid: number; startTime: number };
  processes: RecordedProcess[];
}

export const REGISTRY_DIR = ".skein-extensions";

type Log = Pick<Logger, "info" | "warn">;

/**
 * The extension processes this service instance has running, on disk beside
 * the sessions so that the next instance can end them if this one is killed
 * (`kill -9` runs no cleanup). Each instance writes only its own file,
 * `<sessionsDir>/.skein-extensions/<pid>-<starttime>.json`, so several
 * instances on one directory never overwrite each other's records.
 */
export class PidRegistry {
  private readonly live = new Map<number, RecordedProcess>();
  private readonly owner: { pid: number; startTime: number };
  private chain: Promise<void> = Promise.resolve();
  private queued?: Promise<void>;

  private constructor(
    private readonly dir: string,
    private readonly log: Log | undefined,
    private readonly killGraceMs: number,
  ) {
    this.owner = { pid: process.pid, startTime: liveStartTicks(process.pid) ?? 0 };
  }

  static async open(sessionsDir: string, opts: { log?: Log; killGraceMs?: number } = {}): Promise<PidRegistry> {
    const dir = join(sessionsDir, REGISTRY_DIR);
    await makeDirectory(dir, DIR_MODE);
    return new PidRegistry(dir, opts.log, opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
  }

  get file(): string {
    return join(this.dir, `${this.owner.pid}-${this.owner.startTime}.json`);
  }

  /** Extension processes this instance has on record (not yet seen to exit). */
  get count(): number {
    return this.live.size;
  }

  /** Records a just-spawned process; resolves once the record is on disk. */
  async add(pid: number, extension: string): Promise<void> {
    const startTime = liveStartTicks(pid);
    // Already gone (exited at once): nothing could be orphaned.
    if (startTime === undefined) return;
    this.live.set(pid, { pid, startTime, extension });
    await this.persist();
  }

  async remove(pid: number): Promise<void> {
    if (!this.live.delete(pid)) return;
    await this.persist();
  }

  /**
   * Ends every still-running process group recorded by a previous instance
   * that is no longer alive, then drops its record. Call once at service start.
   * Returns how many groups were ended.
   */
  async reapOrphans(): Promise<number> {
    let ended = 0;
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        // A write cut short by a crash; the rename never happened.
        await unlink(path).catch(() => {});
        continue;
      }
      if (!name.endsWith(".json") || path === this.file) continue;
      const state = await readState(path);
      if (state === undefined) {
        this.log?.warn({ file: path }, "unreadable extension process record removed");
        await unlink(path).catch(() => {});
        continue;
      }
      if (liveStartTicks(state.owner.pid) === state.owner.startTime) continue; // its owner still runs
      const orphans = state.processes.filter(isOrphanGroupAlive);
      await Promise.all(orphans.map((p) => endProcessGroup(p.pid, this.killGraceMs)));
      for (const p of orphans) this.log?.info({ pid: p.pid, extension: p.extension }, "ended orphaned extension process group");
      ended += orphans.length;
      await unlink(path).catch(() => {});
    }
    return ended;
  }

  /** Waits for pending writes; removes this instance's file once nothing is left running. */
  async close(): Promise<void> {
    await this.chain;
    if (this.live.size === 0) await unlink(this.file).catch(() => {});
  }

  // Writes are serialised and coalesced: a change made while a write is queued
  // (not yet started) is carried by that write.
  private persist(): Promise<void> {
    if (this.queued) return this.queued;
    const write = this.chain.then(() => {
      this.queued = undefined;
      const state: StateFile = { owner: this.owner, processes: [...this.live.values()] };
      return writeAtomic(this.file, JSON.stringify(state) + "\n");
    });
    this.queued = write;
    this.chain = write.catch((err: unknown) => {
      this.log?.warn({ err, file: this.file }, "cannot write extension process record");
    });
    return write;
  }
}

/**
 * Whether the recorded group still has live members of ours. The leader must
 * still be the recorded process (same start time). If the leader is gone but
 * members remain, they are ours: Linux never hands out a pid still in use as
 * a process group id, so the group cannot belong to anyone else.
 */
function isOrphanGroupAlive(p: RecordedProcess): boolean {
  const leader = readProcStatSync(p.pid);
  if (isLive(leader)) return isSameProcess(leader, p.startTime);
  return groupMembers(p.pid).length > 0;
}

async function readState(path: string): Promise<StateFile | undefined> {
  try {
    const s = JSON.parse(await readFile(path, "utf8")) as StateFile;
    if (typeof s?.owner?.pid !== "number" || !Array.isArray(s.processes)) return undefined;
    const ok = s.processes.every((p) => Number.isInteger(p?.pid) && p.pid > 1 && Number.isInteger(p.startTime));
    return ok ? s : undefined;
  } catch {
    return undefined;
  }
}
