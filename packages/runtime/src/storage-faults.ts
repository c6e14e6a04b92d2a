import { status } from "@grpc/grpc-js";
import { SkeinError } from "./errors.js";

/**
 * Storage that failed for a reason the operator can name: each kind has one
 * gRPC status and one machine-readable code for stream `error` events, so a
 * unary call and a Reply stream answer the same fault the same way.
 */
export abstract class StorageFault extends SkeinError {
  abstract readonly eventCode: string;
}

/** Cannot reach the database now; a retry may succeed (clients retry UNAVAILABLE). */
export class StorageUnavailableError extends StorageFault {
  readonly eventCode = "STORE_UNAVAILABLE";
  constructor(message: string) {
    super(status.UNAVAILABLE, message);
  }
}

/** The disk (or the database's) is full. */
export class StorageFullError extends StorageFault {
  readonly eventCode = "STORE_FULL";
  constructor(message: string) {
    super(status.RESOURCE_EXHAUSTED, message);
  }
}

/** The store may not be written: read-only file system, permissions. */
export class StorageReadOnlyError extends StorageFault {
  readonly eventCode = "STORE_READ_ONLY";
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, message);
  }
}

/** The stored file is damaged or not what it should be; nothing is changed in it. */
export class StorageDamagedError extends StorageFault {
  readonly eventCode = "STORE_DAMAGED";
  constructor(message: string) {
    super(status.DATA_LOSS, message);
  }
}

const FULL_ERRNOS = new Set(["ENOSPC", "EDQUOT"]);
const READ_ONLY_ERRNOS = new Set(["EROFS", "EACCES", "EPERM"]);

/**
 * A file-system error of a store (`what`, e.g. "the session store", kept at
 * `path`) as the fault it is, or undefined for anything else. Only errors about
 * files under `path` count: an EACCES elsewhere is not the store's.
 */
export function fileSystemFault(err: unknown, what: string, path: string): StorageFault | undefined {
  if (err instanceof StorageFault) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const code = typeof e?.code === "string" ? e.code : undefined;
  if (!code) return undefined;
  if (typeof e?.path === "string" && !isUnder(e.path, path)) return undefined;
  if (FULL_ERRNOS.has(code)) return new StorageFullError(`no space left for ${what} at ${path} (${code})`);
  if (READ_ONLY_ERRNOS.has(code)) return new StorageReadOnlyError(`${what} at ${path} cannot be written (${code}${code === "EROFS" ? ": read-only file system" : ": permission denied"})`);
  return undefined;
}

function isUnder(file: string, dir: string): boolean {
  const d = dir.endsWith("/") ? dir : `${dir}/`;
  return file === dir || file.startsWith(d);
}
