import type { GooseMessage, GooseMetadata } from "@skein/goose-sessions/goose-format";
import type { LoadedSession, SessionStore } from "@skein/goose-sessions";

/** A session as a run starts from it, with what tells whether a kept copy may be reused. */
export interface OpenedSession {
  readonly session: LoadedSession;
  /** True when the copy kept in memory was reused (no read of the history). */
  readonly reused: boolean;
  readonly fingerprint: string;
  readonly generation: number;
}

/**
 * A live agent's copy of its session's messages and metadata as its last
 * reply left them, so the next reply need not read and parse the whole
 * history. Other writers exist (the goose CLI on the same sessions.db or
 * JSONL file, another replica), so the copy is reused only while the store's
 * fingerprint is what it was when the copy was taken, and taken only when the
 * fingerprint did not move during the reply. It lives and dies with the live
 * agent, so at most SKEIN_MAX_LIVE_AGENTS copies exist and eviction frees them.
 */
export class SessionHistory {
  private kept: { readonly session: LoadedSession; readonly fingerprint: string } | undefined;
  private generation = 0;

  /** Something in this process changed the session outside a reply (a summary, an extension edit): reload next time. */
  invalidate(): void {
    this.kept = undefined;
    this.generation++;
  }

  /**
   * The session for a reply: the kept copy when the store's fingerprint still
   * matches, else a fresh load (fingerprint read first, so a write between
   * the two only costs a reload later). The copy is the reply's until keep().
   * `read`: the fingerprint the caller just read (under the session's lock,
   * before anything is loaded), so it is not read twice. Undefined when the
   * session does not exist.
   */
  async open(store: SessionStore, id: string, read?: string): Promise<OpenedSession | undefined> {
    const fingerprint = read ?? (await store.fingerprint(id));
    const kept = this.kept;
    this.kept = undefined;
    if (fingerprint === undefined) return undefined;
    const generation = this.generation;
    if (kept && kept.fingerprint === fingerprint) return { session: kept.session, reused: true, fingerprint, generation };
    const session = await store.load(id);
    return session && { session, reused: false, fingerprint, generation };
  }

  /**
   * After a reply whose every write succeeded: keeps `messages` and `metadata`
   * (what the store now holds) when nothing else wrote to the session since
   * open() — the fingerprint is unchanged and no invalidate() came.
   */
  async keep(store: SessionStore, opened: OpenedSession, messages: GooseMessage[], metadata: GooseMetadata): Promise<void> {
    if (opened.generation !== this.generation) return;
    // A failed read only costs the next reply a load. Known without a read when every write since open() was the store's own.
    const now = store.ownFingerprint?.(opened.session.id) ?? (await store.fingerprint(opened.session.id).catch(() => undefined));
    if (now !== opened.fingerprint || opened.generation !== this.generation) return;
    this.kept = { session: { ...opened.session, messages, metadata }, fingerprint: now };
  }
}
