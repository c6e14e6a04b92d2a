import { FailedPreconditionError, NotFoundError } from "@skein/runtime";
import type { SessionStore } from "@skein/goose-sessions";
import { seqEpochsUsed, withSeqEpochsUsed } from "@skein/goose-sessions/goose-format";

/**
 * Events of one epoch are numbered inside [epoch × EPOCH_SPAN, (epoch + 1) × EPOCH_SPAN):
 * 2^32 events per epoch, 2^21 epochs within JavaScript's safe integers.
 */
export const EPOCH_SPAN = 2 ** 32;

/** The right to run one piece of work (a reply, a summary) on a session; released exactly once. */
export interface RunClaim {
  readonly label: string;
  /**
   * The seq the work's events continue after: the session's last seq when
   * this instance numbered events for it already, else the start of an epoch
   * no earlier instance used.
   */
  readonly seqAfter: number;
  /** Where the work writes: the store itself, or with replicas one bound to the claim's lease. */
  readonly store: SessionStore;
  /** Aborts when the claim is lost or the work is cancelled from elsewhere (another replica). */
  readonly signal?: AbortSignal;
  release(): void;
}

/** The session held while it is deleted; released exactly once. */
export interface DeleteHold {
  release(): void;
}

/**
 * Who may run work on a session right now. The session slot asks before it
 * starts a run and releases when the run has finished. Here: this process's
 * memory (one instance serves each session). Replicas on a shared database
 * put a lease behind the same interface.
 */
export interface RunOwnership {
  /**
   * Claims `sessionId` for `label`; FAILED_PRECONDITION "busy" when another
   * claim holds it. `lastSeq` is the seq this instance last numbered for the
   * session (0: none yet).
   */
  claim(sessionId: string, label: string, lastSeq: number): Promise<RunClaim>;
  /**
   * Holds the session while it is deleted (this process's own work is
   * already stopped); with replicas, work elsewhere is asked to stop first.
   */
  claimForDelete(sessionId: string): Promise<DeleteHold>;
}

/**
 * In-process ownership. Seq epochs are persisted in the session's metadata
 * (skein's record, see goose-format/skein-metadata.ts) before the first event of
 * an instance is numbered, so numbering after a restart starts above every
 * seq an earlier instance could have sent.
 */
export class LocalRunOwnership implements RunOwnership {
  private readonly held = new Map<string, string>();

  constructor(private readonly store: SessionStore) {}

  async claim(sessionId: string, label: string, lastSeq: number): Promise<RunClaim> {
    const holder = this.held.get(sessionId);
    if (holder !== undefined) throw busy(sessionId, holder);
    this.held.set(sessionId, label);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.held.delete(sessionId);
    };
    try {
      const seqAfter = lastSeq > 0 ? lastSeq : await this.newEpoch(sessionId);
      return { label, seqAfter, store: this.store, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The caller stopped this process's work on the session: nothing else can hold it. */
  async claimForDelete(): Promise<DeleteHold> {
    return { release: () => undefined };
  }

  /** Takes the session's next unused epoch and returns where its numbering starts. */
  private async newEpoch(sessionId: string): Promise<number> {
    let epoch = 0;
    const written = await this.store.updateMetadata(sessionId, (m) => {
      epoch = seqEpochsUsed(m);
      return withSeqEpochsUsed(m, epoch + 1);
    });
    if (!written) throw new NotFoundError(`session ${sessionId} does not exist`);
    if (epoch * EPOCH_SPAN > Number.MAX_SAFE_INTEGER - EPOCH_SPAN) throw new FailedPreconditionError(`session ${sessionId} has used every event-numbering epoch`);
    return epoch * EPOCH_SPAN;
  }
}

export function busy(sessionId: string, holder: string): FailedPreconditionError {
  return new FailedPreconditionError(`session ${sessionId} is busy with request ${holder}; wait for it or cancel it with CancelReply`);
}
