import type { ExtensionConfig, ExtensionSet } from "../extensions/index.js";
import { SessionHistory } from "../runs/session-history.js";

/**
 * A session's agent while it is in memory: its extension processes (the
 * provider client is shared by every agent). `sessionExtensions` are the ones
 * persisted in the session's metadata; the set also runs the service-wide ones.
 * `history` is its copy of the session's messages, freed with the agent.
 */
export class LiveAgent {
  readonly history = new SessionHistory();

  constructor(
    readonly extensions: ExtensionSet,
    public sessionExtensions: ExtensionConfig[],
  ) {}
}

/** What an agent is built from: the session's working dir and its own extensions. */
export interface AgentSpec {
  readonly workingDir: string;
  readonly extensions: readonly ExtensionConfig[];
}
