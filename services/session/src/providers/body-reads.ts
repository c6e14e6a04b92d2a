import { finished, type Readable } from "node:stream";

/** Chunks held before the body is paused (the reader takes them all at its next read). */
const MAX_HELD = 64;

/**
 * A Node response body read a wake-up at a time: every chunk that arrived
 * since the last read comes out together. One promise per wake-up, where the
 * stream's async iterator (itself an async generator over read() and
 * 'readable') cost a generator resumption and several promises per network
 * read, which a paced provider makes once per delta of every reply.
 * Backpressure holds: past MAX_HELD unread chunks the body is paused until
 * the next read.
 */
export class BodyReads {
  private held: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly unwatch: () => void;
  private readonly onData = (chunk: Buffer) => {
    this.held.push(chunk);
    if (this.held.length >= MAX_HELD) this.body.pause();
    this.wakeUp();
  };

  constructor(private readonly body: Readable) {
    body.on("data", this.onData);
    // An end without 'end' (a cut connection, a destroy) is an error here, as it is to the async iterator.
    this.unwatch = finished(body, (err) => {
      this.failure = err ?? undefined;
      this.ended = true;
      this.wakeUp();
    });
  }

  /**
   * The chunks that came since the last read, at once when there are any,
   * else a promise resolved with them by the next chunk (not a wake-up the
   * reader then follows with another call: a promise less per read);
   * undefined once the body ended. Throws what broke it, after the chunks
   * before that.
   */
  next(): Buffer[] | undefined | Promise<Buffer[] | undefined> {
    if (this.held.length > 0 || this.ended) return this.take();
    return new Promise<Buffer[] | undefined>((resolve, reject) => {
      this.wake = () => {
        try {
          resolve(this.take());
        } catch (err) {
          reject(err);
        }
      };
    });
  }

  private take(): Buffer[] | undefined {
    if (this.held.length === 0) {
      if (this.failure) throw this.failure;
      return undefined;
    }
    const chunks = this.held;
    this.held = [];
    if (this.body.isPaused() && !this.ended) this.body.resume();
    return chunks;
  }

  /** Stops listening (the caller destroys a body it leaves unread). */
  close(): void {
    this.body.off("data", this.onData);
    this.unwatch();
    this.held = [];
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
