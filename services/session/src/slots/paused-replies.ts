import { status } from "@grpc/grpc-js";
import { FailedPreconditionError, SkeinError } from "@skein/runtime";
import type { PausedRun } from "@skein/goose-sessions/goose-format";
import type { RunClaim, RunOwnership } from "../coordination/run-ownership.js";

/**
 * Replies this process paused for tool approvals: how many tool calls each
 * waits on (skein_pending_approvals) and the SKEIN_APPROVAL_TIMEOUT_MS timer
 * that denies them. Nothing else is held while a reply waits: no lease, no
 * lock; the stored history is what any process resumes from.
 */
export class PausedReplies {
  private readonly paused = new Map<string, { timer: NodeJS.Timeout | undefined; waiting: number }>();

  constructor(private readonly timeoutMs: number) {}

  /** Tool calls waiting in the replies this process paused. */
  get waiting(): number {
    let n = 0;
    for (const p of this.paused.values()) n += p.waiting;
    return n;
  }

  /**
   * `onTimeout` denies what still waits once SKEIN_APPROVAL_TIMEOUT_MS has
   * passed since `pausedAt` (a reply paused before a restart: what is left of it).
   */
  mark(sessionId: string, waiting: number, onTimeout: (timeoutMs: number) => void, pausedAt = Date.now()): void {
    this.clear(sessionId);
    const ms = this.timeoutMs;
    const timer = ms > 0 ? setTimeout(() => onTimeout(ms), Math.max(0, pausedAt + ms - Date.now())) : undefined;
    timer?.unref();
    this.paused.set(sessionId, { timer, waiting });
  }

  /** One of the session's tool calls was decided. */
  decided(sessionId: string): void {
    const p = this.paused.get(sessionId);
    if (p && p.waiting > 0) p.waiting--;
  }

  /** The reply goes on (or is gone): its timer stops. */
  clear(sessionId: string): void {
    const p = this.paused.get(sessionId);
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    this.paused.delete(sessionId);
  }

  clearAll(): void {
    for (const id of [...this.paused.keys()]) this.clear(id);
  }
}

/**
 * A claim to resume a paused reply, waiting a little while another replica
 * still holds the session (its paused run finishing its last writes); then
 * UNAVAILABLE, the decision being stored already.
 */
export async function claimToResume(ownership: RunOwnership, id: string, requestId: string, lastSeq: number): Promise<RunClaim> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ownership.claim(id, requestId, lastSeq);
    } catch (err) {
      if (!(err instanceof FailedPreconditionError)) throw err;
      if (attempt >= 50) throw new SkeinError(status.UNAVAILABLE, `session ${id} is still held elsewhere; the decision is stored: retry ConfirmToolCall to resume`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A second Reply while a turn waits for approvals: which calls, and how to go on. */
export function pausedError(id: string, paused: PausedRun): FailedPreconditionError {
  const calls = paused.pending.map((p) => `${p.id} (${p.toolName})`).join(", ");
  return new FailedPreconditionError(
    `session ${id} waits for approval of tool calls ${calls} of request ${paused.requestId}; decide them with ConfirmToolCall or end that reply with CancelReply`,
  );
}
