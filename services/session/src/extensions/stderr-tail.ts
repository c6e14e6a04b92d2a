/**
 * The last bytes an extension wrote to stderr, kept for error messages. Bounded:
 * a chatty extension costs at most `maxBytes` however long it runs.
 */
export class StderrTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes = 8 * 1024) {}

  push(chunk: Buffer): void {
    if (chunk.length >= this.maxBytes) {
      this.chunks = [chunk.subarray(chunk.length - this.maxBytes)];
      this.size = this.maxBytes;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.maxBytes) {
      const head = this.chunks[0]!;
      const excess = this.size - this.maxBytes;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /** The last `n` non-empty lines (the first may be cut short by the bound). */
  lastLines(n = 10): string[] {
    const text = Buffer.concat(this.chunks).toString("utf8");
    return text.split(/\r?\n/).filter((l) => l.trim() !== "").slice(-n);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
}
