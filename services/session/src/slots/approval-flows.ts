import { randomUUID } from "node:crypto";
import type { Logger } from "@skein/runtime";
import { CANCELLED_APPROVAL, timedOutApproval } from "../agent-loop/tool-policy.js";
import { pausedRun, type Permission } from "@skein/goose-sessions/goose-format";
import type { Provider } from "../providers/provider.js";
import { recordDecision, type UserPermissions } from "../runs/confirm.js";
import type { RunInput } from "../runs/run-input.js";
import type { Coordination } from "../coordination/coordination.js";
import type { AgentPool } from "./agent-pool.js";
import { claimToResume, PausedReplies } from "./paused-replies.js";
import type { RunDriver } from "./run-driver.js";

export interface ApprovalFlowsOptions {
  /** The store decisions are written to, and who may resume a reply. */
  readonly coordination: Coordination;
  /** goose's permission.yaml: written by always-* decisions. */
  readonly permissions: UserPermissions;
  /** SKEIN_APPROVAL_TIMEOUT_MS: a paused reply's undecided tool calls are denied after this long (0: never). */
  readonly approvalTimeoutMs: number;
  readonly log: Logger;
}

/**
 * What happens to a reply paused for tool approvals: a decision is stored and,
 * once nothing of the turn waits, the reply goes on (here, whichever process
 * paused it); a timeout or a cancel denies what still waits and resumes it to
 * its end. Timers of paused replies are PausedReplies'.
 */
export class ApprovalFlows {
  private readonly paused: PausedReplies;

  constructor(
    private readonly pool: AgentPool,
    private readonly driver: RunDriver,
    private readonly opts: ApprovalFlowsOptions,
  ) {
    this.paused = new PausedReplies(opts.approvalTimeoutMs);
  }

  /** Tool calls of replies this process paused that wait for a decision (skein_pending_approvals). */
  get waiting(): number {
    return this.paused.waiting;
  }

  /**
   * After a start: the replies paused before it (by this process or, with
   * replicas, any) get their SKEIN_APPROVAL_TIMEOUT_MS back, counted from when
   * they paused. Reads the session list once, in the background.
   */
  async rearm(provider: Provider): Promise<void> {
    if (this.opts.approvalTimeoutMs <= 0) return;
    let pageToken = "";
    do {
      const page = await this.opts.coordination.store.list(1000, pageToken);
      for (const s of page.sessions) {
        const paused = pausedRun(s.metadata);
        if (paused && !this.pool.closed) this.arm(s.id, paused.requestId, paused.pending.length, provider, paused.pausedAt);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && !this.pool.closed);
  }

  /** A reply paused: its timeout starts (from `pausedAt` when it paused before this start). */
  arm(id: string, requestId: string, waiting: number, provider: Provider, pausedAt?: number): void {
    const log = this.opts.log.child({ sessionId: id, runRequestId: requestId });
    this.paused.mark(
      id,
      waiting,
      (ms) => {
        log.info({ timeoutMs: ms }, "approval timed out; denying what waits");
        this.resume(id, requestId, provider, { deny: timedOutApproval(ms) }).catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, "could not deny the approvals that timed out"),
        );
      },
      pausedAt,
    );
  }

  /** The session is gone (deleted): its timer stops. */
  forget(id: string): void {
    this.paused.clear(id);
  }

  /** Shutdown: every timer stops. */
  close(): void {
    this.paused.clearAll();
  }

  /**
   * ConfirmToolCall: the decision is checked against the stored history and
   * stored; once nothing of the turn waits, the paused reply goes on here,
   * whichever process paused it. Resolves once it has started.
   */
  async confirm(id: string, toolCallId: string, permission: Permission, provider: Provider, decidedBy: { requestId: string; peer: string }): Promise<void> {
    const slot = this.pool.use(id);
    const d = await slot
      .locked(async () => {
        this.pool.assertUsable(slot);
        const recorded = await recordDecision(this.opts.coordination.store, this.opts.permissions, id, toolCallId, permission);
        // The decision was written outside a run: the agent's kept copy of the history is stale.
        slot.agent?.history.invalidate();
        return recorded;
      })
      .finally(() => this.pool.dropIfEmpty(slot));
    if (d.recorded) {
      this.opts.log.info({ sessionId: id, toolName: d.toolName, toolCallId, permission, decidedBy: decidedBy.requestId, peer: decidedBy.peer }, "tool call decided");
      this.paused.decided(id);
    }
    if (d.resumeAs !== undefined) await this.resume(id, d.resumeAs || randomUUID(), provider, {});
  }

  /**
   * CancelReply of a reply paused for approvals (here, elsewhere, before a
   * restart): what waits is denied and it ends cancelled. False when no (such)
   * reply is paused.
   */
  async cancelPaused(id: string, requestId: string, provider: Provider): Promise<boolean> {
    const info = await this.opts.coordination.store.info(id);
    const waiting = info && pausedRun(info.metadata);
    if (!waiting || (requestId !== "" && waiting.requestId !== requestId)) return false;
    const done = await this.resume(id, waiting.requestId, provider, { deny: CANCELLED_APPROVAL, stop: true });
    await done;
    return true;
  }

  /** Continues a paused reply under its request id; resolves with its end once it has started. */
  private async resume(id: string, requestId: string, provider: Provider, resume: Partial<NonNullable<RunInput["resume"]>>): Promise<Promise<void>> {
    const slot = this.pool.use(id);
    return slot
      .locked(async () => {
        this.pool.assertUsable(slot);
        // The paused run itself may still be writing its last metadata.
        if (slot.work) await slot.work.done;
        const agent = await this.pool.agentOf(slot);
        const claim = await claimToResume(this.opts.coordination.ownership, id, requestId, slot.lastSeq);
        this.paused.clear(id);
        agent.history.invalidate();
        const events = this.driver.eventsFor(slot, claim);
        const run = { requestId, text: "", provider, tools: agent.extensions, history: agent.history, resume: { stop: false, ...resume } };
        return this.driver.start(slot, claim, events, run);
      })
      .catch((err: unknown) => {
        this.pool.dropIfEmpty(slot);
        throw err;
      });
  }
}
