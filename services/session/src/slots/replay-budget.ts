import { EventBudget } from "../runs/event-log.js";
import type { SessionSlot } from "./session-slot.js";

/**
 * The replay windows' budget across sessions (SKEIN_EVENT_BUFFER_TOTAL): each
 * in-process log accounts its ring in `budget`; once over it, the windows of
 * the least recently used sessions nobody runs or watches are released.
 */
export class ReplayBudget {
  readonly budget: EventBudget;

  constructor(total: number) {
    this.budget = new EventBudget(total);
  }

  /** Events held for replay across all sessions. */
  get buffered(): number {
    return this.budget.total;
  }

  /** `slots` in recency order (least recent first); `released` hears of each slot whose window went. */
  keepWithin(slots: Iterable<SessionSlot>, released: (slot: SessionSlot) => void): void {
    if (!this.budget.over) return;
    // Not copied first: `released` may drop the slot from the map being walked, which a Map's iterator allows
    // (copying every slot at every run's end showed in the paced profile with hundreds of sessions running).
    for (const s of slots) {
      if (!this.budget.over) break;
      if (s.releaseWindow()) released(s);
    }
  }
}
