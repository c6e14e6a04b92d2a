import {
  fileSystemFault,
  StorageDamagedError,
  StorageFault,
  StorageFullError,
  StorageReadOnlyError,
  StorageUnavailableError,
} from "@skein/runtime";

/**
 * Where a store keeps its sessions, as faults name it: the sessions.db file,
 * the JSONL directory, or the PostgreSQL database (its URL, password masked).
 */
export interface StoreTarget {
  readonly kind: "sqlite" | "jsonl" | "postgres";
  readonly location: string;
}

/** SQLSTATE classes and codes that mean "the database cannot be reached now": a retry may succeed. */
const PG_UNAVAILABLE = /^(08...|57P0[1-4]|53300|53200|40P01|55P03)$/;
/** Errors of node-postgres and Node for a connection that is gone, refused or never came up. */
const CONNECTION_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|Client was closed and is not queryable|Connection ended|terminating connection|Query read timeout/i;

/**
 * The one mapping of storage failures to what callers are told, used for
 * every store (sqlite, JSONL, PostgreSQL) by the gRPC status of calls, the
 * `error` event of a Reply, the health probe and start-up:
 *   unreachable database (refused, reset, terminated, 57P01/57P03/08xxx, pool
 *   timeout), SQLITE_BUSY past its window  → UNAVAILABLE  STORE_UNAVAILABLE
 *   SQLITE_FULL, ENOSPC, PostgreSQL 53100    → RESOURCE_EXHAUSTED STORE_FULL
 *   SQLITE_READONLY, EACCES, EROFS, 25006    → FAILED_PRECONDITION STORE_READ_ONLY
 *   SQLITE_CORRUPT, SQLITE_NOTADB, XX001     → DATA_LOSS STORE_DAMAGED
 * Anything else is not a storage fault (undefined): it stays INTERNAL.
 */
export function storeFault(err: unknown, target: StoreTarget): StorageFault | undefined {
  if (err instanceof StorageFault) return err;
  const f = classify(err, target);
  if (!f) return undefined;
  const where = target.location;
  switch (f.kind) {
    case "unavailable":
      return new StorageUnavailableError(`the session database is unreachable: ${f.reason} (retry)`);
    case "full":
      return new StorageFullError(`no space left for the session store at ${where} (${f.reason})`);
    case "readOnly":
      return new StorageReadOnlyError(`the session store at ${where} cannot be written: ${f.reason}`);
    case "damaged":
      return new StorageDamagedError(`the session store ${where} is damaged: ${f.reason}; it was left unchanged`);
  }
}

/**
 * At start-up: one line naming the store and what is wrong with it
 * ("/x/sessions.db is not a SQLite database (SQLITE_NOTADB)"), or undefined.
 */
export function startupProblem(err: unknown, target: StoreTarget): string | undefined {
  const f = classify(err, target);
  if (!f) return undefined;
  const where = target.location;
  switch (f.kind) {
    case "unavailable":
      return `the session database ${where} is unreachable: ${f.reason}`;
    case "full":
      return `${where}: no space left on its file system (${f.reason})`;
    case "readOnly":
      return `${where} is read-only (${f.reason})`;
    case "damaged":
      return f.code === "SQLITE_NOTADB"
        ? `${where} is not a SQLite database (SQLITE_NOTADB); it was left unchanged`
        : `${where} is damaged (${f.reason}); it was left unchanged`;
  }
}

type Kind = "unavailable" | "full" | "readOnly" | "damaged";

function classify(err: unknown, target: StoreTarget): { kind: Kind; reason: string; code?: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err instanceof StorageFault) return { kind: kindOf(err), reason: err.message };
  const raw = (err as { code?: unknown }).code;
  const code = typeof raw === "string" ? raw : undefined;
  const reason = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  if (code?.startsWith("SQLITE_")) {
    const kind = sqliteKind(code);
    return kind && { kind, reason, code };
  }
  if (target.kind === "postgres") {
    if (code && /^[0-9A-Z]{5}$/.test(code)) {
      if (code === "53100") return { kind: "full", reason, code };
      if (code === "25006") return { kind: "readOnly", reason, code };
      if (code === "XX001" || code === "XX002") return { kind: "damaged", reason, code };
      return PG_UNAVAILABLE.test(code) ? { kind: "unavailable", reason, code } : undefined;
    }
    if ((code && CONNECTION_ERRNOS.has(code)) || CONNECTION_MESSAGES.test(err.message)) return { kind: "unavailable", reason };
    // node-postgres wraps a refused connection in an AggregateError (one per address tried).
    if (err instanceof AggregateError && err.errors.some((e) => classify(e, target)?.kind === "unavailable")) return { kind: "unavailable", reason: err.errors.map((e: Error) => e.message).join("; ") };
    return undefined;
  }
  const fsFault = fileSystemFault(err, "the session store", target.kind === "sqlite" ? dirOf(target.location) : target.location);
  return fsFault && { kind: kindOf(fsFault), reason, ...(code ? { code } : {}) };
}

function sqliteKind(code: string): Kind | undefined {
  if (code.startsWith("SQLITE_FULL")) return "full";
  if (code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_PERM") || code.startsWith("SQLITE_CANTOPEN") || code === "SQLITE_AUTH") return "readOnly";
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return "damaged";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "unavailable";
  return undefined;
}

function kindOf(f: StorageFault): Kind {
  if (f instanceof StorageFullError) return "full";
  if (f instanceof StorageReadOnlyError) return "readOnly";
  if (f instanceof StorageDamagedError) return "damaged";
  return "unavailable";
}

function dirOf(file: string): string {
  const i = file.lastIndexOf("/");
  return i > 0 ? file.slice(0, i) : file;
}
