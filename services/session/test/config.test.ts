import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@skein/runtime";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

const log = createLogger("test", { destination: { write: () => true } as unknown as NodeJS.WritableStream, pretty: false });
let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "skein-config-"));
  mkdirSync(join(home, ".config", "goose"), { recursive: true });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const goose = (file: string, text: string) => writeFileSync(join(home, ".config", "goose", file), text);

describe("provider settings", () => {
  it("come from goose's config.yaml and the key from its secrets.yaml when skein's variables are unset", () => {
    goose("config.yaml", "GOOSE_PROVIDER: openai\nGOOSE_MODEL: gpt-4o-mini\nOPENAI_HOST: http://models.internal:8000\n");
    goose("secrets.yaml", "OPENAI_API_KEY: sk-from-goose\n");
    expect(loadConfig({ HOME: home }, log).provider).toEqual({
      settings: { kind: "openai", model: "gpt-4o-mini", baseURL: "http://models.internal:8000/v1", apiKey: "sk-from-goose", source: "goose config" },
    });
  });

  it("prefer the environment over goose's files", () => {
    goose("config.yaml", "GOOSE_PROVIDER: anthropic\nGOOSE_MODEL: claude-x\n");
    goose("secrets.yaml", "ANTHROPIC_API_KEY: from-goose\n");
    const p = loadConfig({ HOME: home, ANTHROPIC_API_KEY: "from-env", SKEIN_MODEL: "claude-y" }, log).provider;
    expect(p).toMatchObject({ settings: { kind: "anthropic", model: "claude-y", apiKey: "from-env" } });
  });

  it("map goose's ollama provider to its OpenAI-compatible endpoint, needing no key", () => {
    goose("config.yaml", "GOOSE_PROVIDER: ollama\nGOOSE_MODEL: llama3.2\nOLLAMA_HOST: http://gpu-box:11434\n");
    expect(loadConfig({ HOME: home }, log).provider).toMatchObject({ settings: { kind: "openai", baseURL: "http://gpu-box:11434/v1" } });
  });

  it("say which variables to set when nothing is configured", () => {
    const p = loadConfig({ HOME: home }, log).provider;
    expect("missing" in p && p.missing).toMatch(/SKEIN_PROVIDER.*SKEIN_MODEL/);
  });

  it("use SKEIN_PROVIDER and SKEIN_MODEL first, with goose's secrets as the key's fallback", () => {
    goose("secrets.yaml", "OPENAI_API_KEY: sk-goose\n");
    expect(loadConfig({ HOME: home, SKEIN_PROVIDER: "openai", SKEIN_MODEL: "m" }, log).provider).toMatchObject({
      settings: { kind: "openai", model: "m", apiKey: "sk-goose", source: "environment" },
    });
  });
});

describe("session store settings", () => {
  it("default to goose's sessions.db in goose's own sessions directory", () => {
    const c = loadConfig({ HOME: home }, log);
    expect(c.store).toBe("goose-sqlite");
    expect(c.sessionsDir).toBe(join(home, ".local", "share", "goose", "sessions"));
  });

  it("follow goose's path rules: XDG_DATA_HOME when absolute, GOOSE_PATH_ROOT above both", () => {
    expect(loadConfig({ HOME: home, XDG_DATA_HOME: "/data/xdg" }, log).sessionsDir).toBe("/data/xdg/goose/sessions");
    expect(loadConfig({ HOME: home, XDG_DATA_HOME: "relative/xdg" }, log).sessionsDir).toBe(join(home, ".local", "share", "goose", "sessions"));
    expect(loadConfig({ HOME: home, XDG_DATA_HOME: "/data/xdg", GOOSE_PATH_ROOT: "/srv/goose" }, log).sessionsDir).toBe("/srv/goose/data/sessions");
    expect(loadConfig({ HOME: home, GOOSE_PATH_ROOT: "/srv/goose", SKEIN_SESSIONS_DIR: "/mine" }, log).sessionsDir).toBe("/mine");
  });

  it("accept goose-jsonl and postgres (with its settings), refuse any other value, naming the variable", () => {
    expect(loadConfig({ HOME: home, SKEIN_SESSION_STORE: "goose-jsonl" }, log).store).toBe("goose-jsonl");
    const pgUrl = "postgresql://skein:s3cret@db:5432/skein";
    const pgConfig = loadConfig({ HOME: home, SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: pgUrl, SKEIN_REPLICA_ID: "replica-a" }, log);
    expect(pgConfig.store).toBe("postgres");
    expect(pgConfig.postgres).toEqual({ databaseUrl: pgUrl, runLeaseMs: 10_000, databaseWaitMs: 30_000, eventBatchMs: 20 });
    const waiting = { HOME: home, SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: pgUrl };
    expect(loadConfig({ ...waiting, SKEIN_DATABASE_WAIT_MS: "0" }, log).postgres?.databaseWaitMs).toBe(0);
    expect(() => loadConfig({ ...waiting, SKEIN_DATABASE_WAIT_MS: "soon" }, log)).toThrow(/^SKEIN_DATABASE_WAIT_MS="soon" is not a whole number/);
    expect(loadConfig({ ...waiting, SKEIN_EVENT_BATCH_MS: "0" }, log).postgres?.eventBatchMs).toBe(0);
    expect(() => loadConfig({ ...waiting, SKEIN_EVENT_BATCH_MS: "5000" }, log)).toThrow(/^SKEIN_EVENT_BATCH_MS/);
    expect(pgConfig.replica.id).toBe("replica-a");
    expect(loadConfig({ HOME: home }, log).replica.id).toMatch(/^.+:\d+$/);
    expect(() => loadConfig({ HOME: home, SKEIN_REPLICA_ID: "a b" }, log)).toThrow(/^SKEIN_REPLICA_ID="a b" must be/);
    expect(() => loadConfig({ HOME: home, SKEIN_SESSION_STORE: "postgres" }, log)).toThrow(/^SKEIN_DATABASE_URL must be set when SKEIN_SESSION_STORE=postgres/);
    expect(() => loadConfig({ HOME: home, SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: "mysql://u:s3cret@h/db" }, log)).toThrow(
      /^SKEIN_DATABASE_URL="mysql:\/\/u:\*\*\*@h\/db" must start with postgresql:\/\//,
    );
    expect(() => loadConfig({ HOME: home, SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: pgUrl, SKEIN_RUN_LEASE_MS: "10" }, log)).toThrow(/^SKEIN_RUN_LEASE_MS=10 is outside 500\.\.600000/);
    expect(() => loadConfig({ HOME: home, SKEIN_SESSION_STORE: "mysql" }, log)).toThrow(/^SKEIN_SESSION_STORE="mysql" must be one of goose-sqlite, goose-jsonl, postgres$/);
  });

  it("SKEIN_DATABASE_CA becomes the URL's sslrootcert (verify-full unless the URL says otherwise); a missing or non-PEM file is refused", () => {
    const pg = { HOME: home, SKEIN_SESSION_STORE: "postgres" };
    const ca = join(home, "ca.pem");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const url = (u: string) => loadConfig({ ...pg, SKEIN_DATABASE_URL: u, SKEIN_DATABASE_CA: ca }, log).postgres!.databaseUrl;
    expect(new URL(url("postgresql://skein:s3cret@db:5432/skein?sslmode=require")).searchParams.get("sslrootcert")).toBe(ca);
    expect(new URL(url("postgresql://skein:s3cret@db:5432/skein?sslmode=require")).searchParams.get("sslmode")).toBe("require");
    expect(new URL(url("postgresql://skein:s3cret@db:5432/skein")).searchParams.get("sslmode")).toBe("verify-full");
    expect(() => url("postgresql://skein:s3cret@db/skein?sslrootcert=/other.pem")).toThrow(/^SKEIN_DATABASE_CA=.* and sslrootcert in SKEIN_DATABASE_URL both name a CA file/);
    const db = "postgresql://skein:s3cret@db:5432/skein";
    expect(() => loadConfig({ ...pg, SKEIN_DATABASE_URL: db, SKEIN_DATABASE_CA: join(home, "missing.pem") }, log)).toThrow(/^SKEIN_DATABASE_CA=".*missing\.pem" cannot be read \(ENOENT\)/);
    writeFileSync(join(home, "not.pem"), "hello");
    expect(() => loadConfig({ ...pg, SKEIN_DATABASE_URL: db, SKEIN_DATABASE_CA: join(home, "not.pem") }, log)).toThrow(/^SKEIN_DATABASE_CA=.* must be a PEM file/);
    expect(loadConfig({ ...pg, SKEIN_DATABASE_URL: db }, log).postgres!.databaseUrl).toBe(db);
  });
});

describe("size limits", () => {
  it("default to goose's 200,000-character tool output threshold and responses default gRPC clients accept", () => {
    const c = loadConfig({ HOME: home }, log);
    expect(c).toMatchObject({ maxToolResultChars: 200_000, maxModelOutputChars: 1_000_000, maxResponseBytes: 4 * 1024 * 1024 });
    expect(loadConfig({ HOME: home, SKEIN_MAX_SEND_MESSAGE_BYTES: "1048576" }, log).maxResponseBytes).toBe(1_048_576);
  });

  it("reject values out of range, naming the variable", () => {
    expect(() => loadConfig({ HOME: home, SKEIN_MAX_TOOL_RESULT_CHARS: "10" }, log)).toThrow(/SKEIN_MAX_TOOL_RESULT_CHARS/);
    expect(() => loadConfig({ HOME: home, SKEIN_MAX_MODEL_OUTPUT_CHARS: "lots" }, log)).toThrow(/SKEIN_MAX_MODEL_OUTPUT_CHARS/);
  });
});

describe("the default permission mode", () => {
  it("is SKEIN_PERMISSION_MODE, else GOOSE_MODE from the environment, else from goose's config.yaml, else auto", () => {
    expect(loadConfig({ HOME: home }, log).defaultMode).toBe("auto");
    goose("config.yaml", "GOOSE_MODE: smart_approve\n");
    expect(loadConfig({ HOME: home }, log).defaultMode).toBe("smart_approve");
    expect(loadConfig({ HOME: home, GOOSE_MODE: "chat" }, log).defaultMode).toBe("chat");
    expect(loadConfig({ HOME: home, GOOSE_MODE: "chat", SKEIN_PERMISSION_MODE: "approve" }, log).defaultMode).toBe("approve");
  });

  it("refuses a bad SKEIN_PERMISSION_MODE naming the variable; a bad goose value falls back to auto", () => {
    expect(() => loadConfig({ HOME: home, SKEIN_PERMISSION_MODE: "sometimes" }, log)).toThrow(/SKEIN_PERMISSION_MODE="sometimes" must be one of auto, approve, smart_approve, chat/);
    goose("config.yaml", "GOOSE_MODE: sometimes\n");
    expect(loadConfig({ HOME: home }, log).defaultMode).toBe("auto");
  });

  it("keeps goose's permission.yaml beside its config.yaml; the approval timeout defaults to one hour", () => {
    const c = loadConfig({ HOME: home }, log);
    expect(c.permissionFile).toBe(join(home, ".config", "goose", "permission.yaml"));
    expect(c.approvalTimeoutMs).toBe(3_600_000);
    expect(loadConfig({ HOME: home, SKEIN_APPROVAL_TIMEOUT_MS: "0" }, log).approvalTimeoutMs).toBe(0);
  });
});
