import { isDeepStrictEqual } from "node:util";
import type { ExtensionConfig, ExtensionSet } from "../extensions/index.js";
import type { Logger } from "@skein/runtime";
import { sessionExtensions } from "@skein/goose-sessions/goose-format";
import { SessionHistory } from "../runs/session-history.js";
import type { SessionStore } from "@skein/goose-sessions";

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
    readonly workingDir: string,
    /** The store's fingerprint when `sessionExtensions` last matched it (see SessionSlots.outdated). */
    public checkedAt: string | undefined,
  ) {}

  /** Whether it runs what `spec` says (another replica or the goose CLI may have edited the session). */
  matches(spec: AgentSpec): boolean {
    return spec.workingDir === this.workingDir && sameConfigs(spec.extensions, this.sessionExtensions);
  }
}

/** Equal as sets by name, field by field (a config read back from the store may order its keys differently). */
function sameConfigs(a: readonly ExtensionConfig[], b: readonly ExtensionConfig[]): boolean {
  const canonical = (list: readonly ExtensionConfig[]) => [...list].sort((x, y) => x.name.localeCompare(y.name)).map((c) => JSON.parse(JSON.stringify(c)) as unknown);
  return isDeepStrictEqual(canonical(a), canonical(b));
}

/** What an agent is built from: the session's working dir and its own extensions. */
export interface AgentSpec {
  readonly workingDir: string;
  readonly extensions: readonly ExtensionConfig[];
}

/**
 * The agent a stored session asks for: its working dir and own extensions,
 * less those skein runs service-wide (a goose session can list a stdio
 * extension skein also runs for every session: that one runs once).
 * Undefined when the session does not exist.
 */
export async function storedAgentSpec(store: SessionStore, id: string, serviceExtensions: readonly ExtensionConfig[], log: Logger): Promise<AgentSpec | undefined> {
  const info = await store.info(id);
  if (!info) return undefined;
  const own = sessionExtensions(info.metadata, log.child({ sessionId: id })).filter((e) => !serviceExtensions.some((s) => s.name === e.name));
  return { workingDir: info.metadata.working_dir, extensions: own };
}
