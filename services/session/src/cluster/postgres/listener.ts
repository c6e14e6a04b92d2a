import pg from "pg";
import { RepeatedFaults, type Logger } from "@skein/runtime";
import { redactUrl, redactorFor } from "@skein/goose-sessions/postgres";

export interface ListenerOptions {
  readonly channels: readonly string[];
  readonly applicationName: string;
  /** First reconnect delay; doubles up to maxReconnectDelayMs. */
  readonly reconnectDelayMs?: number;
  readonly maxReconnectDelayMs?: number;
}

/**
 * LISTEN on one dedicated connection (a pooled one would lose its LISTEN when
 * handed back). Notifications are only "read again" signals: when the
 * connection drops, notifications sent meanwhile are lost, so after every
 * reconnect the `reconnected` handlers run and subscribers read from their
 * last seq: a lost notification delays an event, never loses it.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private delay: number;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly redact: (s: string) => string;
  /** Reconnects retry with backoff while the database is down: logged boundedly. */
  private readonly faults: RepeatedFaults;
  /** Connections made so far (1 after start; more after each reconnect). */
  connections = 0;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly opts: ListenerOptions,
  ) {
    this.delay = opts.reconnectDelayMs ?? 100;
    this.redact = redactorFor(url);
    this.faults = new RepeatedFaults(log, "reconnecting the LISTEN connection", "connections");
  }

  /** Connects and listens; rejects when the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  on(channel: string, fn: (payload: string) => void): () => void {
    if (!this.opts.channels.includes(channel)) throw new Error(`not listening on ${channel}`);
    const set = this.handlers.get(channel) ?? new Set();
    this.handlers.set(channel, set);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Runs after every reconnect (not the first connect): read again from the last seq. */
  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: this.opts.applicationName });
    client.on("notification", (n) => {
      for (const fn of this.handlers.get(n.channel) ?? []) fn(n.payload ?? "");
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    try {
      await client.connect();
      for (const ch of this.opts.channels) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.connections++;
    this.delay = this.opts.reconnectDelayMs ?? 100;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    client.removeAllListeners("end");
    client.end().catch(() => undefined);
    this.log.warn({ database: redactUrl(this.url), reason: this.redact(err.message) }, "the LISTEN connection dropped; reconnecting");
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect().then(
        () => {
          if (this.closed) return;
          // This line is the recovery line of the failures counted below.
          this.faults.forget("listen");
          this.log.info({ database: redactUrl(this.url) }, "the LISTEN connection is back; subscribers catch up");
          for (const fn of this.reconnectHandlers) fn();
        },
        (err: Error) => {
          this.faults.failed("listen", new Error(this.redact(err.message)), { database: redactUrl(this.url), retryInMs: this.delay });
          this.delay = Math.min(this.delay * 2, this.opts.maxReconnectDelayMs ?? 5_000);
          this.schedule();
        },
      );
    }, this.delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners("end");
      await c.end().catch(() => undefined);
    }
  }
}
