import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { newAgent, type FleetEvent } from "../src/agent.js";
import { WebhookNotifier } from "../src/webhook.js";
import { waitFor, webhookReceiver } from "./harness.js";

const servers: Awaited<ReturnType<typeof webhookReceiver>>[] = [];
let notifier: WebhookNotifier | undefined;
afterEach(async () => {
  notifier?.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A receiver answering each POST with the next status of `answers` (the last one repeats). */
async function receiver(answers: number[]): Promise<{ url: string; bodies: string[] }> {
  const server = await webhookReceiver((i) => answers[Math.min(i, answers.length - 1)]!);
  servers.push(server);
  const posts = server.posts;
  return {
    url: server.url,
    get bodies() {
      return posts.map((p) => p.raw);
    },
  };
}

function waitingEvent(name: string): FleetEvent {
  const a = newAgent({ name, workdir: "/", command: "x", runtime: "pi", runtimeBinDirs: [], env: {}, heartbeatIntervalSeconds: 1, heartbeatFile: "/x", restartPolicy: "never", maxRestarts: 1 });
  Object.assign(a, { activity: "waiting", waitingFor: "Proceed?" });
  return { type: "activity", agent: { ...a, tmuxSocket: "s" }, at: new Date(), message: "" };
}

/** A logger whose warnings land in `lines`. */
function capturingLog(lines: Record<string, unknown>[]) {
  return pino({ level: "warn" }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
}

describe("webhook delivery", () => {
  it("retries a 5xx answer with backoff until it is taken; a 4xx is not retried", async () => {
    const r = await receiver([503, 500, 204]);
    const logged: Record<string, unknown>[] = [];
    notifier = new WebhookNotifier({ defaultUrl: r.url, secret: undefined, log: capturingLog(logged), retryDelaysMs: [50, 50, 50] });
    notifier.notify(waitingEvent("a"));
    await waitFor("three attempts", () => r.bodies.length === 3);
    expect(new Set(r.bodies).size).toBe(1);
    expect(logged).toEqual([]);

    const bad = await receiver([400]);
    notifier.close();
    notifier = new WebhookNotifier({ defaultUrl: bad.url, secret: undefined, log: capturingLog(logged), retryDelaysMs: [50, 50] });
    notifier.notify(waitingEvent("b"));
    await waitFor("the failure logged", () => logged.length === 1);
    expect(bad.bodies).toHaveLength(1);
    expect(logged[0]!.msg).toMatch(/webhook delivery failed after 1 attempt\(s\): HTTP 400/);
    // The log names the receiver's origin, never its path (incoming-webhook URLs hold their secret there).
    expect(logged[0]!.url).toBe(new URL(bad.url).origin);
  });

  it("a flood from one agent is rate-limited, the drops logged boundedly; an unreachable receiver is retried, then logged", async () => {
    const r = await receiver([204]);
    const logged: Record<string, unknown>[] = [];
    notifier = new WebhookNotifier({ defaultUrl: r.url, secret: undefined, log: capturingLog(logged), burst: 2, refillMs: 60_000 });
    for (let i = 0; i < 5; i++) notifier.notify(waitingEvent("flood"));
    // Three dropped at once: the first drop logged, the others counted for the next line (at most one a minute).
    expect(logged.map((l) => l.msg)).toEqual(["rate limit for agent flood: notification dropped"]);
    await waitFor("the two within the burst", () => r.bodies.length === 2);
    notifier.close();

    const down: Record<string, unknown>[] = [];
    notifier = new WebhookNotifier({ defaultUrl: "http://127.0.0.1:1/", secret: undefined, log: capturingLog(down), retryDelaysMs: [20] });
    notifier.notify(waitingEvent("a"));
    await waitFor("the failure logged", () => down.length === 1);
    expect(down[0]!.msg).toMatch(/^webhook delivery failed after 2 attempt\(s\): /);
  });
});
