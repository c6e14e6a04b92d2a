import { homedir } from "node:os";
import { ConfigError, envEnum, envInt, envNumber, envOptional, envString, maxSendMessageBytes, type Logger } from "@skein/runtime";
import { envDurationMs } from "./duration.js";
import { gooseConfigPath, gooseSecretsPath, gooseSessionsDir } from "@skein/goose-sessions";
import { GooseYamlFile } from "./goose-yaml.js";
import { postgresSettings, type PostgresSettings } from "@skein/goose-sessions/postgres";
import { replicaIdentity, type ReplicaIdentity } from "./replica-identity.js";
import type { Env } from "@skein/host";
import { dirname, join } from "node:path";
import { MODE_NAMES, isGooseMode, type GooseMode } from "@skein/goose-sessions/goose-format";

/**
 * gRPC clients refuse a message over 4 MiB unless configured otherwise
 * (grpc-js, grpc-go, grpcurl): no response of the session service is larger,
 * whatever the sessions hold, so no session can lock a default client out.
 */
export const CLIENT_RECEIVE_DEFAULT_BYTES = 4 * 1024 * 1024;

export type ProviderKind = "openai" | "anthropic";

export interface ProviderSettings {
  readonly kind: ProviderKind;
  readonly model: string;
  /** Undefined means the SDK's default (api.openai.com / api.anthropic.com). */
  readonly baseURL: string | undefined;
  readonly apiKey: string | undefined;
  /** Where the settings came from, for the start-up log. */
  readonly source: "environment" | "goose config";
}

/** goose-sqlite: goose ≥1.10's sessions.db; goose-jsonl: goose ≤1.9's files; postgres: one database shared by replicas. */
export type StoreKind = "goose-sqlite" | "goose-jsonl" | "postgres";

export interface SessionConfig {
  readonly sessionsDir: string;
  readonly store: StoreKind;
  /** Set when store is postgres. */
  readonly postgres: PostgresSettings | undefined;
  readonly replica: ReplicaIdentity;
  /** Either usable settings or the sentence Reply answers with while none are configured. */
  readonly provider: { settings: ProviderSettings } | { missing: string };
  readonly providerTimeoutMs: number;
  readonly providerMaxRetries: number;
  readonly maxTokens: number;
  readonly maxMessageChars: number;
  /** What one tool result and one model message may put into the history; the rest is cut with a note. */
  readonly maxToolResultChars: number;
  readonly maxModelOutputChars: number;
  /** No response (GetSession page, stream event) is larger: what default gRPC clients accept, or less. */
  readonly maxResponseBytes: number;
  readonly eventBuffer: number;
  /** Events kept for replay across all sessions; idle sessions' windows go first. */
  readonly eventBufferTotal: number;
  readonly maxTurns: number;
  readonly syncEachMessage: boolean;
  /** A live agent unused this long is evicted (its extension processes end). */
  readonly idleTimeoutMs: number;
  readonly maxLiveAgents: number;
  /** SIGTERM → SIGKILL grace when ending an extension's process group. */
  readonly extensionKillGraceMs: number;
  /** Compact when the last usage exceeds this share of contextLimit; 0 turns auto-compaction off. */
  readonly autoCompactThreshold: number;
  readonly contextLimit: number;
  /** goose's config.yaml (read once), also the source of service-wide extensions. */
  readonly gooseConfig: GooseYamlFile;
  /** The mode of sessions created without one: SKEIN_PERMISSION_MODE, else goose's GOOSE_MODE. */
  readonly defaultMode: GooseMode;
  /** How long a tool call waits for a decision before it is denied; 0 waits forever. */
  readonly approvalTimeoutMs: number;
  /** goose's permission.yaml (always allow / never allow per tool), beside its config.yaml. */
  readonly permissionFile: string;
}

export function loadConfig(env: Env, log: Logger): SessionConfig {
  const home = env.HOME ?? homedir();
  const gooseConfig = new GooseYamlFile(gooseConfigPath(env, home));
  return {
    sessionsDir: envString("SKEIN_SESSIONS_DIR", gooseSessionsDir(env, home), env),
    store: storeKind(env),
    postgres: storeKind(env) === "postgres" ? postgresSettings(env) : undefined,
    replica: replicaIdentity(env),
    provider: resolveProvider(env, home, gooseConfig, log),
    providerTimeoutMs: envInt("SKEIN_PROVIDER_TIMEOUT_MS", 60_000, { min: 100, max: 3_600_000 }, env),
    providerMaxRetries: envInt("SKEIN_PROVIDER_MAX_RETRIES", 2, { min: 0, max: 10 }, env),
    maxTokens: envInt("SKEIN_MAX_TOKENS", 4096, { min: 1, max: 1_000_000 }, env),
    maxMessageChars: envInt("SKEIN_MAX_MESSAGE_CHARS", 100_000, { min: 1, max: 10_000_000 }, env),
    // goose moves tool output over 200,000 characters out of the conversation; skein keeps that much.
    maxToolResultChars: envInt("SKEIN_MAX_TOOL_RESULT_CHARS", 200_000, { min: 1_000, max: 100_000_000 }, env),
    maxModelOutputChars: envInt("SKEIN_MAX_MODEL_OUTPUT_CHARS", 1_000_000, { min: 1_000, max: 100_000_000 }, env),
    maxResponseBytes: Math.min(maxSendMessageBytes(env), CLIENT_RECEIVE_DEFAULT_BYTES),
    eventBuffer: envInt("SKEIN_EVENT_BUFFER", 512, { min: 1, max: 1_000_000 }, env),
    eventBufferTotal: envInt("SKEIN_EVENT_BUFFER_TOTAL", 4_096, { min: 1, max: 100_000_000 }, env),
    maxTurns: envInt("SKEIN_MAX_TURNS", 100, { min: 1, max: 10_000 }, env),
    syncEachMessage: envEnum("SKEIN_FSYNC_EACH_MESSAGE", ["true", "false"], "false", env) === "true",
    idleTimeoutMs: envDurationMs("SKEIN_SESSION_IDLE_TIMEOUT", 15 * 60_000, { minMs: 100, maxMs: 7 * 24 * 3_600_000 }, env),
    maxLiveAgents: envInt("SKEIN_MAX_LIVE_AGENTS", 100, { min: 1, max: 100_000 }, env),
    extensionKillGraceMs: envInt("SKEIN_EXTENSION_KILL_GRACE_MS", 2_000, { min: 0, max: 60_000 }, env),
    autoCompactThreshold: envNumber("SKEIN_AUTO_COMPACT_THRESHOLD", 0.8, { min: 0, max: 1 }, env),
    contextLimit: envInt("SKEIN_CONTEXT_LIMIT", 128_000, { min: 1_000, max: 100_000_000 }, env),
    gooseConfig,
    defaultMode: defaultMode(env, gooseConfig, log),
    approvalTimeoutMs: envInt("SKEIN_APPROVAL_TIMEOUT_MS", 3_600_000, { min: 0, max: 2_147_483_647 }, env),
    permissionFile: join(dirname(gooseConfigPath(env, home)), "permission.yaml"),
  };
}

function storeKind(env: Env): StoreKind {
  return envEnum("SKEIN_SESSION_STORE", ["goose-sqlite", "goose-jsonl", "postgres"], "goose-sqlite", env);
}

const MISSING =
  "no model provider is configured: set SKEIN_PROVIDER (openai or anthropic) and SKEIN_MODEL, plus OPENAI_API_KEY and/or OPENAI_BASE_URL " +
  "(or ANTHROPIC_API_KEY), or GOOSE_PROVIDER and GOOSE_MODEL in goose's config.yaml";

function resolveProvider(env: Env, home: string, gooseConfig: GooseYamlFile, log: Logger): SessionConfig["provider"] {
  const explicit = envOptional("SKEIN_PROVIDER", env);
  if (explicit !== undefined) {
    const kind = envEnum("SKEIN_PROVIDER", ["openai", "anthropic"], "openai", env);
    const model = envOptional("SKEIN_MODEL", env);
    if (model === undefined) throw new ConfigError("SKEIN_MODEL must be set when SKEIN_PROVIDER is");
    return checked(settingsFor(kind, model, env, undefined, "environment", gooseMap(new GooseYamlFile(gooseSecretsPath(env, home)), log)));
  }
  const goose = gooseMap(gooseConfig, log);
  const secrets = gooseMap(new GooseYamlFile(gooseSecretsPath(env, home)), log);
  const gooseProvider = envOptional("GOOSE_PROVIDER", env) ?? stringOf(goose.GOOSE_PROVIDER);
  const model = envOptional("SKEIN_MODEL", env) ?? envOptional("GOOSE_MODEL", env) ?? stringOf(goose.GOOSE_MODEL);
  if (gooseProvider === undefined || model === undefined) return { missing: MISSING };
  const host = (key: string) => envOptional(key, env) ?? stringOf(goose[key]);
  switch (gooseProvider) {
    case "openai":
      return checked(settingsFor("openai", model, env, withV1(host("OPENAI_HOST")), "goose config", secrets));
    case "anthropic":
      return checked(settingsFor("anthropic", model, env, host("ANTHROPIC_HOST"), "goose config", secrets));
    case "ollama":
      // Ollama speaks the OpenAI protocol under /v1 and needs no key.
      return checked({ kind: "openai", model, baseURL: withV1(host("OLLAMA_HOST") ?? "http://localhost:11434"), apiKey: "ollama", source: "goose config" });
    default:
      log.warn({ gooseProvider }, "goose provider is not one skein speaks; set SKEIN_PROVIDER");
      return { missing: `${MISSING} (GOOSE_PROVIDER=${gooseProvider} is not supported)` };
  }
}

/**
 * The API key comes from the environment, else from goose's secrets.yaml
 * (where goose keeps keys when the OS keyring is disabled), so a machine set
 * up for the goose CLI works unchanged.
 */
function settingsFor(
  kind: ProviderKind,
  model: string,
  env: Env,
  fallbackBase: string | undefined,
  source: ProviderSettings["source"],
  gooseSecrets: Record<string, unknown>,
): ProviderSettings {
  const vars = PROVIDER_VARS[kind];
  const apiKey = envOptional(vars.apiKey, env) ?? stringOf(gooseSecrets[vars.apiKey]);
  return { kind, model, baseURL: envOptional(vars.baseURL, env) ?? fallbackBase, apiKey, source };
}

/** Spelled out (not built from a prefix) so the configuration-table test (docs/configuration.md) finds every variable read. */
const PROVIDER_VARS = {
  openai: { apiKey: "OPENAI_API_KEY", baseURL: "OPENAI_BASE_URL" },
  anthropic: { apiKey: "ANTHROPIC_API_KEY", baseURL: "ANTHROPIC_BASE_URL" },
} as const;

/** The hosted APIs need a key; a local server (custom base URL) usually does not. */
function checked(s: ProviderSettings): SessionConfig["provider"] {
  if (s.apiKey === undefined && s.baseURL === undefined) {
    const vars = PROVIDER_VARS[s.kind];
    return { missing: `provider ${s.kind} needs ${vars.apiKey} (or ${vars.baseURL} for a server that needs no key)` };
  }
  return { settings: s };
}

function withV1(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const trimmed = host.replace(/\/+$/, "");
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

function stringOf(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** One of goose's YAML files as a map; missing or unreadable is empty (with a warning when it is not YAML). */
function gooseMap(file: GooseYamlFile, log: Logger): Record<string, unknown> {
  const r = file.read();
  if ("yamlError" in r) {
    log.warn({ path: file.path, err: r.yamlError }, "goose file is not valid YAML; ignoring it");
    return {};
  }
  return "doc" in r && r.doc !== null && typeof r.doc === "object" ? (r.doc as Record<string, unknown>) : {};
}

/**
 * As goose reads GOOSE_MODE (environment first, then config.yaml), under
 * skein's own SKEIN_PERMISSION_MODE. A bad SKEIN_PERMISSION_MODE stops the
 * service; a bad goose value is goose's to reject, so it is warned about and auto used.
 */
function defaultMode(env: Env, gooseConfig: GooseYamlFile, log: Logger): GooseMode {
  if (envOptional("SKEIN_PERMISSION_MODE", env) !== undefined) return envEnum("SKEIN_PERMISSION_MODE", MODE_NAMES, "auto", env);
  const goose = envOptional("GOOSE_MODE", env) ?? gooseMap(gooseConfig, log).GOOSE_MODE;
  if (goose === undefined) return "auto";
  if (isGooseMode(goose)) return goose;
  log.warn({ GOOSE_MODE: goose }, `GOOSE_MODE is not one of ${MODE_NAMES.join(", ")}; using auto`);
  return "auto";
}
