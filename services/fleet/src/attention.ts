import { randomBytes } from "node:crypto";
import { fleetSignalSocketPath } from "@skein/host";
import { join } from "node:path";
import { SubscriberOverflowError, type Broadcaster } from "@skein/runtime";
import type { Logger } from "pino";
import { ActivityTracker } from "./activity-tracker.js";
import type { Agent, FleetEvent } from "./agent.js";
import type { FleetConfig } from "./config.js";
import { PaneWatch } from "./pane-watch.js";
import { PromptTable } from "./prompts.js";
import { installSignalCommand, SIGNAL_AGENT_VAR, SIGNAL_SECRET_VAR, SIGNAL_SOCKET_VAR, SignalServer, type SignalVerdict } from "./signal-server.js";
import type { Tmux } from "./tmux.js";
import { WebhookNotifier } from "./webhook.js";

export interface AttentionDeps {
  readonly config: FleetConfig;
  readonly log: Logger;
  readonly tmux: Tmux;
  readonly events: Broadcaster<FleetEvent>;
  readonly agents: () => Iterable<Agent>;
  readonly find: (name: string) => Agent | undefined;
  /** An agent's activity changed: publish it, beat, persist. */
  readonly changed: (a: Agent, message: string) => void;
}

const newSecret = () => randomBytes(24).toString("base64url");

/**
 * What tells a person which agent needs them: the activity tracker, the
 * signal socket agents report through, and the webhooks that carry it out.
 */
export class Attention {
  readonly tracker: ActivityTracker;
  private readonly panes: PaneWatch;
  private readonly signals: SignalServer;
  private readonly notifier: WebhookNotifier;
  private readonly following = new AbortController();
  /** Directory put first on every pane's PATH: it holds skein-fleet-signal. */
  readonly binDir: string;

  constructor(private readonly d: AttentionDeps) {
    this.panes = new PaneWatch(d.tmux);
    this.tracker = new ActivityTracker({
      tmux: this.panes,
      prompts: PromptTable.load(d.config.promptsFile),
      idleAfterMs: d.config.idleAfterMs,
      log: d.log,
      agents: d.agents,
      changed: d.changed,
    });
    this.signals = new SignalServer(fleetSignalSocketPath(d.config.socket), (...args) => this.onSignal(...args), d.log);
    this.notifier = new WebhookNotifier({ defaultUrl: d.config.webhookUrl, secret: d.config.webhookSecret, log: d.log });
    this.binDir = join(d.config.stateDir, `fleet-${d.config.socket}-bin`);
  }

  /** After the socket lock is held (the signal socket lies beside it). */
  async open(): Promise<void> {
    const swept = await this.panes.sweepControlClients().catch(() => []);
    if (swept.length > 0) this.d.log.warn({ pids: swept }, "ended tmux control clients a previous fleet service left behind");
    await installSignalCommand(this.binDir);
    await this.signals.listen();
    void this.follow();
    this.tracker.start();
  }

  async close(): Promise<void> {
    this.tracker.stop();
    this.panes.close();
    this.following.abort();
    this.notifier.close();
    await this.signals.close();
  }

  /** A fresh secret for the agent's next run, and what its launch line must export. */
  launchEnv(a: Agent): Record<string, string> {
    a.signalSecret = newSecret();
    return this.signalEnv(a.spec.name, a.signalSecret);
  }

  /** What launchEnv() will add, for the launch line's size check before anything is made. */
  launchEnvShape(name: string): Record<string, string> {
    return this.signalEnv(name, newSecret());
  }

  private signalEnv(name: string, secret: string): Record<string, string> {
    return { [SIGNAL_AGENT_VAR]: name, [SIGNAL_SECRET_VAR]: secret, [SIGNAL_SOCKET_VAR]: this.signals.path };
  }

  private onSignal(name: string, activity: "working" | "waiting" | "idle", message: string, secretOk: (expected: string) => boolean): SignalVerdict {
    const a = this.d.find(name);
    if (!a || a.state !== "running") return "no-agent";
    if (!secretOk(a.signalSecret)) return "refused";
    this.tracker.signal(a, activity, message);
    return "ok";
  }

  /** Every fleet event goes past the notifier, which never makes anyone wait. */
  private async follow(): Promise<void> {
    while (!this.following.signal.aborted) {
      try {
        for await (const e of this.d.events.subscribe([this.following.signal], 4096)) this.notifier.notify(e);
        return;
      } catch (err) {
        if (!(err instanceof SubscriberOverflowError)) throw err;
        this.d.log.warn("webhook notifier fell behind the fleet's events; some notifications were dropped");
      }
    }
  }
}
