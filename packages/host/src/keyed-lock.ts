/**
 * Runs tasks with the same key one after another (writes to one session file;
 * start, stop and restart of one agent); different keys run freely. A key with
 * nothing queued holds no memory.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Nothing runs or waits under this key right now. */
  isIdle(key: string): boolean {
    return !this.tails.has(key);
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
