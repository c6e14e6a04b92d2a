import { constants as fsConstants } from "node:fs";
import { open, readdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, InvalidArgumentError, type Logger } from "@skein/runtime";
import { KeyedLock, makeDirectory, TEMP_PREFIX, writeAtomic } from "@skein/host";
import { copyTail, DIR_MODE, readFirstLine, writeAll } from "../files.js";
import { defaultMetadata, looksLikeMetadata, normalizeMetadata, parseMessage, serializeLine, type GooseMessage, type GooseMetadata } from "../goose-format/messages.js";
import { isValidSessionId, newSessionId } from "../ids.js";
import { OwnWrites } from "./own-writes.js";
import type { LoadedSession, SessionInfo, SessionPage, SessionStore } from "../session-store.js";
import { decodePageToken, encodePageToken } from "../page-token.js";
import type { StoreTarget } from "../store-faults.js";

const SUFFIX = ".jsonl";

export interface JsonlStoreOptions {
  /** fdatasync after every appended message (survives power loss, not only process death). */
  readonly syncEachMessage: boolean;
}

/**
 * goose's session directory: one `<id>.jsonl` per session. A message is one
 * appended line (O(1) per message); the metadata line is replaced by an atomic
 * rewrite, once per run. Every write to one file goes through a per-session lock.
 */
export class JsonlSessionStore implements SessionStore {
  readonly approvalForm = "legacy";
  private readonly lock = new KeyedLock();
  /** Append handles of sessions being written to, closed at the metadata rewrite. */
  private readonly appenders = new Map<string, FileHandle>();
  private readonly ownWrites = new OwnWrites();

  readonly target: StoreTarget;

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly opts: JsonlStoreOptions,
  ) {
    this.target = { kind: "jsonl", location: dir };
  }

  static async open(dir: string, log: Logger, opts: JsonlStoreOptions): Promise<JsonlSessionStore> {
    await makeDirectory(dir, DIR_MODE);
    const store = new JsonlSessionStore(dir, log, opts);
    await store.sweepTempFiles();
    return store;
  }

  private path(id: string): string {
    // Callers validate; this guards the invariant that no id ever leaves the directory.
    if (!isValidSessionId(id)) throw new InvalidArgumentError("session_id", "is not a valid session id");
    return join(this.dir, id + SUFFIX);
  }

  /** Ids are UUIDs: goose ≤1.9 named files by time, so a UUID never meets one of its names. */
  async create(metadata: GooseMetadata): Promise<SessionInfo> {
    const id = newSessionId();
    const path = this.path(id);
    return this.lock.run(id, async () => {
      if (await exists(path)) throw new AlreadyExistsError(`session ${id} already exists`);
      await writeAtomic(path, serializeLine(metadata));
      return { id, metadata, updatedAt: (await stat(path)).mtime };
    });
  }

  async info(id: string): Promise<SessionInfo | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.path(id), "r");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      const [first, st] = await Promise.all([readFirstLine(fh), fh.stat()]);
      return { id, metadata: this.metadataOf(id, first.line).metadata, updatedAt: st.mtime };
    } finally {
      await fh.close();
    }
  }

  async load(id: string): Promise<LoadedSession | undefined> {
    let text: string;
    let updatedAt: Date;
    try {
      const fh = await open(this.path(id), "r");
      try {
        [text, updatedAt] = await Promise.all([fh.readFile("utf8"), fh.stat().then((s) => s.mtime)]);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const lines = text.split("\n");
    // A first line that does not parse is counted and logged below, as a corrupt message line.
    const { metadata, isMetadataLine } = metadataLine(lines[0] ?? "");
    const messages: GooseMessage[] = [];
    let corruptLines = 0;
    for (let i = isMetadataLine ? 1 : 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === "") continue;
      try {
        messages.push(parseMessage(line));
      } catch (err) {
        corruptLines++;
        this.log.warn({ sessionId: id, line: i + 1, reason: (err as Error).message }, "skipping a session line that does not parse; it stays in the file");
      }
    }
    return { id, metadata, updatedAt, messages, corruptLines };
  }

  /** The file's inode, size and mtime, kept across this store's own writes (see OwnWrites). */
  async fingerprint(id: string): Promise<string | undefined> {
    const path = this.path(id);
    return this.lock.run(id, async () => {
      try {
        return this.ownWrites.fingerprint(id, await stat(path, { bigint: true }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.ownWrites.forget(id);
        return undefined;
      }
    });
  }

  async list(pageSize: number, pageToken: string): Promise<SessionPage> {
    const cursor = pageToken === "" ? undefined : decodeToken(pageToken);
    const entries = await this.entries();
    entries.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const after = cursor === undefined ? entries : entries.filter((e) => e.mtimeMs < cursor.m || (e.mtimeMs === cursor.m && e.id > cursor.id));
    const sessions: SessionInfo[] = [];
    let last: (typeof entries)[number] | undefined;
    let i = 0;
    for (; i < after.length && sessions.length < pageSize; i++) {
      const info = await this.info(after[i]!.id);
      last = after[i];
      if (info) sessions.push(info);
    }
    const more = i < after.length && last !== undefined;
    return { sessions, nextPageToken: more && last ? encodeToken({ m: last.mtimeMs, id: last.id }) : "" };
  }

  async count(): Promise<number> {
    return (await this.names()).length;
  }

  async append(id: string, message: GooseMessage): Promise<void> {
    const line = Buffer.from(serializeLine(message));
    await this.lock.run(id, async () => {
      const fh = await this.appender(id);
      await writeAll(fh, line);
      if (this.opts.syncEachMessage) await fh.datasync();
      this.ownWrites.appended(id, line.length, await fh.stat({ bigint: true }));
    });
  }

  async writeMetadata(id: string, metadata: GooseMetadata): Promise<void> {
    await this.updateMetadata(id, () => metadata);
  }

  async updateMetadata(id: string, update: (current: GooseMetadata) => GooseMetadata): Promise<GooseMetadata | undefined> {
    const path = this.path(id);
    return this.lock.run(id, async () => {
      await this.closeAppender(id);
      let src: FileHandle;
      try {
        src = await open(path, "r");
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      try {
        const first = await readFirstLine(src);
        const current = this.metadataOf(id, first.line);
        const metadata = update(current.metadata);
        // Files without a metadata line (old goose) keep every line as a message.
        const tailStart = current.isMetadataLine ? first.end : 0;
        const head = Buffer.from(serializeLine(metadata));
        const before = await src.stat({ bigint: true });
        await writeAtomic(path, async (dst) => {
          await writeAll(dst, head, 0);
          if (tailStart !== first.end || first.hasNewline) await copyTail(src, tailStart, dst, head.length);
          this.ownWrites.replaced(id, before, await dst.stat({ bigint: true }));
        });
        return metadata;
      } finally {
        await src.close();
      }
    });
  }

  async rewrite(id: string, update: (current: GooseMetadata) => GooseMetadata, messages: readonly GooseMessage[]): Promise<SessionInfo> {
    const path = this.path(id);
    const body = messages.map((m) => serializeLine(m)).join("");
    return this.lock.run(id, async () => {
      await this.closeAppender(id);
      const src = await open(path, "r");
      let metadata: GooseMetadata;
      try {
        metadata = update(this.metadataOf(id, (await readFirstLine(src)).line).metadata);
      } finally {
        await src.close();
      }
      this.ownWrites.forget(id);
      await writeAtomic(path, serializeLine(metadata) + body);
      return { id, metadata, updatedAt: (await stat(path)).mtime };
    });
  }

  async delete(id: string): Promise<boolean> {
    const path = this.path(id);
    return this.lock.run(id, async () => {
      await this.closeAppender(id);
      this.ownWrites.forget(id);
      try {
        await unlink(path);
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.appenders.keys()].map((id) => this.lock.run(id, () => this.closeAppender(id))));
  }

  /** Opens for appending without creating: a vanished file must not come back without its metadata. */
  private async appender(id: string): Promise<FileHandle> {
    const open_ = this.appenders.get(id);
    if (open_) return open_;
    const fh = await open(this.path(id), fsConstants.O_RDWR | fsConstants.O_APPEND);
    try {
      // A crash mid-write can leave a torn last line; start on a fresh line so it stays one corrupt line.
      const { size } = await fh.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) await writeAll(fh, Buffer.from("\n"));
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    this.appenders.set(id, fh);
    return fh;
  }

  private async closeAppender(id: string): Promise<void> {
    const fh = this.appenders.get(id);
    if (!fh) return;
    this.appenders.delete(id);
    await fh.close();
  }

  /** metadataLine, warning when the first line does not parse. */
  private metadataOf(id: string, firstLine: string): MetadataLine {
    const m = metadataLine(firstLine);
    if (m.unparseable) this.log.warn({ sessionId: id }, "metadata line does not parse; using defaults");
    return m;
  }

  private async names(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => n.endsWith(SUFFIX) && isValidSessionId(n.slice(0, -SUFFIX.length))).map((n) => n.slice(0, -SUFFIX.length));
  }

  private async entries(): Promise<{ id: string; mtimeMs: number }[]> {
    const out: { id: string; mtimeMs: number }[] = [];
    for (const id of await this.names()) {
      try {
        out.push({ id, mtimeMs: (await stat(join(this.dir, id + SUFFIX))).mtimeMs });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return out;
  }

  private async sweepTempFiles(): Promise<void> {
    for (const n of await readdir(this.dir)) {
      if (n.startsWith(TEMP_PREFIX)) {
        await unlink(join(this.dir, n)).catch(() => undefined);
        this.log.info({ file: n }, "removed a temp file left by an interrupted write");
      }
    }
  }
}

interface MetadataLine {
  readonly metadata: GooseMetadata;
  /** False for files without a metadata line (old goose): their first line is already a message. */
  readonly isMetadataLine: boolean;
  /** The line is not empty and not JSON. */
  readonly unparseable: boolean;
}

/** The metadata a session file's first line holds; the defaults when it holds none. */
function metadataLine(line: string): MetadataLine {
  const v = tryParse(line);
  if (looksLikeMetadata(v)) return { metadata: normalizeMetadata(v), isMetadataLine: true, unparseable: false };
  return { metadata: defaultMetadata("", ""), isMetadataLine: false, unparseable: v === undefined && line.trim() !== "" };
}

function tryParse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

const encodeToken = (c: { m: number; id: string }) => encodePageToken(c);
const decodeToken = (token: string) => decodePageToken<{ m: number; id: string }>(token, (v) => typeof v.m === "number" && typeof v.id === "string");

