import type { ExtensionConfig, ExtensionSet } from "../extensions/index.js";

/**
 * A session's agent while it is in memory: its extension processes (the
 * provider client is shared by every agent). `sessionExtensions` are the ones
 * persisted in the session's metadata; the set also runs the service-wide ones.
 */
export class LiveAgent {
  /** Calls using the agent right now (a running reply, an AddExtension…); never evicted while > 0. */
  leases = 0;
  lastUsed = Date.now();

  constructor(
    readonly sessionId: string,
    readonly extensions: ExtensionSet,
    public sessionExtensions: ExtensionConfig[],
  ) {}

  get idle(): boolean {
    return this.leases === 0;
  }
}

/** The right to use a live agent until release(); released exactly once. */
export interface AgentLease {
  readonly agent: LiveAgent;
  release(): void;
}
