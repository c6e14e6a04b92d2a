import { createHmac } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { AgentSnapshot, FleetEvent } from "./agent.js";

/** The JSON body of every webhook POST. */
export interface WebhookBody {
  agent: string;
  host: string;
  activity: string;
  /** ISO-8601: since when the activity holds. */
  since: string;
  waiting_for: string;
  state: string;
  exit_status: number | null;
}

export const SIGNATURE_HEADER = "x-skein-signature";

export interface NotifierOptions {
  /** SKEIN_FLEET_WEBHOOK_URL: for agents started without a notify_url. */
  readonly defaultUrl: string | undefined;
  /** SKEIN_FLEET_WEBHOOK_SECRET: HMAC-SHA256 of the body, as `sha256=<hex>` in x-skein-signature. */
  readonly secret: string | undefined;
  readonly log: Logger;
  /** Delays between attempts (ms); one attempt more than delays. */
  readonly retryDelaysMs?: readonly number[];
  /** Per agent: at most `burst` notifications, refilled at one per `refillMs`. */
  readonly burst?: number;
  readonly refillMs?: number;
  readonly timeoutMs?: number;
}

const DEFAULT_RETRY_DELAYS_MS = [1_000, 4_000, 15_000, 60_000];
/** Delivery failures are logged at most this often per URL, with the count of those left out. */
const FAILURE_LOG_EVERY_MS = 60_000;

/** Which fleet events a person wants to hear about: waiting, idle, exited, failed. */
export function notifiable(e: FleetEvent): boolean {
  if (e.type === "activity") return e.agent.activity === "waiting" || e.agent.activity === "idle";
  return e.type === "exited" || e.type === "gave-up";
}

export function webhookBody(a: AgentSnapshot, host: string): WebhookBody {
  return {
    agent: a.spec.name,
    host,
    activity: a.activity,
    since: a.activitySince.toISOString(),
    waiting_for: a.waitingFor,
    state: a.gaveUp ? "failed" : a.state,
    exit_status: a.state === "exited" && a.exitStatus !== undefined ? a.exitStatus : null,
  };
}

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Sends webhooks without ever making the fleet wait: each delivery runs on
 * its own, retried with backoff on a network error or a 5xx/429 answer;
 * rate-limited per agent (a flapping agent cannot flood a channel); failures
 * logged boundedly. close() abandons what is still being retried.
 */
export class WebhookNotifier {
  private readonly host = hostname();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly failures = new Map<string, { loggedAt: number; unlogged: number }>();
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly aborts = new Set<AbortController>();
  private closed = false;

  constructor(private readonly o: NotifierOptions) {}

  /** Queues the notification the event calls for, if any; returns at once. */
  notify(e: FleetEvent): void {
    if (this.closed || !notifiable(e)) return;
    const url = e.agent.spec.notifyUrl || this.o.defaultUrl;
    if (!url) return;
    if (!this.take(e.agent.spec.name)) {
      this.failed(url, `rate limit for agent ${e.agent.spec.name}: notification dropped`, undefined);
      return;
    }
    const body = JSON.stringify(webhookBody(e.agent, this.host));
    this.attempt(url, body, 0);
  }

  private take(agent: string): boolean {
    const burst = this.o.burst ?? 10;
    const refillMs = this.o.refillMs ?? 6_000;
    const now = Date.now();
    const b = this.buckets.get(agent) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (now - b.at) / refillMs);
    b.at = now;
    this.buckets.set(agent, b);
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  private attempt(url: string, body: string, n: number): void {
    const delays = this.o.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    const ac = new AbortController();
    this.aborts.add(ac);
    const timer = setTimeout(() => ac.abort(), this.o.timeoutMs ?? 10_000);
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "skein-fleet" };
    if (this.o.secret) headers[SIGNATURE_HEADER] = signBody(body, this.o.secret);
    void fetch(url, { method: "POST", headers, body, signal: ac.signal })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return undefined;
        const retryable = res.status >= 500 || res.status === 429;
        return { retryable, why: `HTTP ${res.status}` };
      })
      .catch((err: unknown) => ({ retryable: true, why: err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err) }))
      .then((failure) => {
        clearTimeout(timer);
        this.aborts.delete(ac);
        if (!failure || this.closed) return;
        const delay = delays[n];
        if (!failure.retryable || delay === undefined) {
          this.failed(url, `webhook delivery failed after ${n + 1} attempt(s): ${failure.why}`, failure.why);
          return;
        }
        const t = setTimeout(() => {
          this.pending.delete(t);
          this.attempt(url, body, n + 1);
        }, delay);
        this.pending.add(t);
      });
  }

  /** Logs the first failure for a URL, then at most one line a minute with how many were left out. */
  private failed(url: string, message: string, why: string | undefined): void {
    const now = Date.now();
    const f = this.failures.get(url) ?? { loggedAt: 0, unlogged: 0 };
    this.failures.set(url, f);
    if (now - f.loggedAt < FAILURE_LOG_EVERY_MS) {
      f.unlogged++;
      return;
    }
    this.o.log.warn({ url: redact(url), why, notLogged: f.unlogged }, message);
    f.loggedAt = now;
    f.unlogged = 0;
  }

  close(): void {
    this.closed = true;
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    for (const ac of this.aborts) ac.abort();
    this.aborts.clear();
  }
}

/** Incoming-webhook URLs carry their secret in the path: log the origin only. */
function redact(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}
