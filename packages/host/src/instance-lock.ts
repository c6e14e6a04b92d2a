import { readFileSync, rmSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { liveStartTicks } from "./proc.js";

export class InstanceLockedError extends Error {
  constructor(
    readonly ownerPid: number,
    message: string,
  ) {
    super(message);
    this.name = "InstanceLockedError";
  }
}

interface Owner {
  pid: number;
  startTicks: number;
}

/**
 * Makes this process the only owner of a resource (a tmux socket, a
 * directory) while it runs: a lock file naming the owner's pid and start
 * time. A lock whose owner is gone, or whose pid now belongs to another
 * program, is taken over, so a `kill -9` never leaves the resource locked.
 * Resolves with the release function.
 */
export async function acquireInstanceLock(path: string, describe: (ownerPid: number) => string): Promise<() => Promise<void>> {
  const me: Owner = { pid: process.pid, startTicks: liveStartTicks(process.pid) ?? 0 };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, "wx", 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Every way out of the process releases it, including process.exit()
      // after a configuration error found once the lock was taken.
      const releaseSync = () => {
        if (isOwnedBy(readOwnerSync(path), me)) rmSync(path, { force: true });
      };
      process.once("exit", releaseSync);
      return async () => {
        process.removeListener("exit", releaseSync);
        releaseSync();
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = readOwnerSync(path);
    if (owner && liveStartTicks(owner.pid) === owner.startTicks) throw new InstanceLockedError(owner.pid, describe(owner.pid));
    await unlink(path).catch(() => undefined);
  }
  throw new InstanceLockedError(0, describe(0));
}

function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    return Number.isInteger(o.pid) && Number.isInteger(o.startTicks) ? (o as Owner) : undefined;
  } catch {
    return undefined;
  }
}

function readOwnerSync(path: string): Owner | undefined {
  try {
    return parseOwner(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function isOwnedBy(owner: Owner | undefined, me: Owner): boolean {
  return owner?.pid === me.pid && owner.startTicks === me.startTicks;
}
