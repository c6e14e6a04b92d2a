/** Serializes async work per key (one session file is written by one task at a time). */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await task();
    } finally {
      release();
      // The last task of a key removes it, so idle sessions hold no entry.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
