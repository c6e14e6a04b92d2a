import type { GooseMessage, GooseMetadata } from "./goose-format/messages.js";
import type { StoreTarget } from "./store-faults.js";

/** What a listing shows of a session without reading its messages. */
export interface SessionInfo {
  readonly id: string;
  readonly metadata: GooseMetadata;
  readonly updatedAt: Date;
}

export interface LoadedSession extends SessionInfo {
  readonly messages: GooseMessage[];
  /** Lines that did not parse; skipped, warned about, and left in the file. */
  readonly corruptLines: number;
}

export interface SessionPage {
  readonly sessions: SessionInfo[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/**
 * Where sessions live: goose ≥1.10's sessions.db (the default, `sqlite/`),
 * goose ≤1.9's JSONL directory (`jsonl/`) or PostgreSQL shared by replicas
 * (`postgres/`); the goose row code sessions.db and PostgreSQL share is in
 * `goose-rows/`. Ids reaching a store are already validated.
 */
export interface SessionStore {
  /** What storage faults name (store-faults.ts): the file, directory or database. */
  readonly target: StoreTarget;
  /**
   * "legacy" for goose ≤ 1.9's JSONL files: tool approvals are written in the
   * form those versions read (see goose-format/approval-format.ts).
   */
  readonly approvalForm?: "legacy";
  /**
   * Creates a session under an id the store allocates: goose's `YYYYMMDD_N`
   * in sessions.db (inside the insert's transaction, so skein's and goose's
   * allocations never collide), a UUID in the JSONL directory.
   */
  create(metadata: GooseMetadata): Promise<SessionInfo>;
  info(id: string): Promise<SessionInfo | undefined>;
  load(id: string): Promise<LoadedSession | undefined>;
  /**
   * A cheap fingerprint of the stored session, to tell whether a copy kept in
   * memory may be reused: when two reads give the same string, no other writer
   * (goose, another process, another replica) changed the session in between.
   * This store's own writes may keep it (sqlite, JSONL) or change it (then the
   * copy is only reloaded more often). A reader that wants a copy takes the
   * fingerprint BEFORE loading. Undefined when the session does not exist.
   */
  fingerprint(id: string): Promise<string | undefined>;
  /**
   * What fingerprint() would answer as this store's own writes left the
   * session, known without a read: every write since its last answer was its
   * own, each finding the session as the one before left it (PostgreSQL: a
   * run's leased writes). A writer after those is seen by the next
   * fingerprint() read. Undefined when it cannot tell: read fingerprint().
   */
  ownFingerprint?(id: string): string | undefined;
  list(pageSize: number, pageToken: string): Promise<SessionPage>;
  count(): Promise<number>;
  /** Durably adds one message; resolves once it would survive the process dying. */
  append(id: string, message: GooseMessage): Promise<void>;
  /** Replaces the metadata atomically, keeping every message. */
  writeMetadata(id: string, metadata: GooseMetadata): Promise<void>;
  /**
   * Reads the current metadata and replaces it with `update(current)` in one
   * step under the session's lock, so concurrent changes (token counts at the
   * end of a run, an added extension, a description) never undo each other.
   * Resolves with what was written; NotFound-free: false-y when the session is gone.
   * `update` may run more than once (PostgreSQL retries after a concurrent
   * write): it computes from `current` alone.
   */
  updateMetadata(id: string, update: (current: GooseMetadata) => GooseMetadata): Promise<GooseMetadata | undefined>;
  /**
   * Optional: append(message), then updateMetadata(update), in one
   * transaction, both or neither: how a reply's last message and the update
   * that closes its run are written where that saves a commit (sessions.db).
   * Resolves with the metadata written; fails as append does (a session gone: NotFound).
   * `messageCount`, when given, is the session's message count with this
   * message as the caller knows it: `update` sees it as
   * `current.message_count`, and the store does not count its rows (a count
   * walks the session's index: every reply of a long session paid it).
   */
  appendClosing?(id: string, message: GooseMessage, update: (current: GooseMetadata) => GooseMetadata, messageCount?: number): Promise<GooseMetadata | undefined>;
  /**
   * Replaces the whole session atomically (compaction): metadata derived from
   * the current one, and every message. Resolves with the session as written.
   */
  rewrite(id: string, metadata: (current: GooseMetadata) => GooseMetadata, messages: readonly GooseMessage[]): Promise<SessionInfo>;
  /** False when there was no such session. */
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}
