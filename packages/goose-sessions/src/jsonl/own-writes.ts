import type { BigIntStats } from "node:fs";

/** Session files whose stamp is remembered; beyond this the oldest is forgotten (its next fingerprint is new: a reload, never a stale copy). */
const MAX_TRACKED = 10_000;

interface Stamp {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
}

interface Tracked {
  /** The file as this store last wrote or saw it. */
  stamp: Stamp;
  /** What fingerprint() answers while the file is still that. */
  fingerprint: string;
}

/**
 * Tells a JSONL store's own writes from another writer's (goose appending a
 * line or replacing the file), so a session file's fingerprint survives the
 * store's own appends and metadata rewrites but changes with anyone else's.
 * A write is the store's own when the file it wrote was exactly what the store
 * last saw and grew by exactly what it wrote; anything else gives a new
 * fingerprint. Callers hold the session's lock around each method.
 */
export class OwnWrites {
  private readonly files = new Map<string, Tracked>();
  private generation = 0;

  /** The fingerprint for the file as `now` shows it (a stat of the path). */
  fingerprint(id: string, now: BigIntStats): string {
    const t = this.files.get(id);
    if (t && sameStamp(t.stamp, now)) return t.fingerprint;
    return this.track(id, now).fingerprint;
  }

  /** After appending `bytes` through a handle that was open on the file before: `after` is that handle's stat. */
  appended(id: string, bytes: number, after: BigIntStats): void {
    const t = this.files.get(id);
    if (t && t.stamp.ino === after.ino && t.stamp.size + BigInt(bytes) === after.size) {
      t.stamp = stampOf(after);
      return;
    }
    this.track(id, after);
  }

  /**
   * After replacing the file: `before` is the stat of the file that was read
   * (its handle), `after` the stat of the new file (its handle, before the rename).
   */
  replaced(id: string, before: BigIntStats, after: BigIntStats): void {
    const t = this.files.get(id);
    if (t && sameStamp(t.stamp, before)) {
      t.stamp = stampOf(after);
      return;
    }
    this.track(id, after);
  }

  /** The file is gone or was rewritten wholesale: its next fingerprint is a new one. */
  forget(id: string): void {
    this.files.delete(id);
  }

  private track(id: string, s: BigIntStats): Tracked {
    const t = { stamp: stampOf(s), fingerprint: `${s.ino}:${s.size}:${s.mtimeNs}#${++this.generation}` };
    this.files.delete(id);
    this.files.set(id, t);
    if (this.files.size > MAX_TRACKED) this.files.delete(this.files.keys().next().value!);
    return t;
  }
}

function stampOf(s: BigIntStats): Stamp {
  return { ino: s.ino, size: s.size, mtimeNs: s.mtimeNs };
}

function sameStamp(a: Stamp, s: BigIntStats): boolean {
  return a.ino === s.ino && a.size === s.size && a.mtimeNs === s.mtimeNs;
}
