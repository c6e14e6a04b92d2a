import { open, type FileHandle } from "node:fs/promises";
import { FILE_MODE } from "./file-modes.js";

export { DIR_MODE, FILE_MODE } from "./file-modes.js";

/**
 * Creates an empty file with FILE_MODE unless one exists (whatever its mode:
 * a database goose made stays as goose made it). SQLite would create a missing
 * database world-readable (0644 under the usual umask), and its -wal and -shm
 * files copy the database's mode; an empty file is a new database to it.
 */
export async function createPrivateFile(path: string): Promise<void> {
  try {
    await (await open(path, "wx", FILE_MODE)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}

/** Writes the whole buffer (fs writes may be partial). */
export async function writeAll(fh: FileHandle, data: Buffer, position?: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position === undefined ? null : position + off);
    off += bytesWritten;
  }
}

/** Byte offset just past the first "\n" (file length when there is none) and the first line's text. */
export async function readFirstLine(fh: FileHandle): Promise<{ line: string; end: number; hasNewline: boolean }> {
  const chunks: Buffer[] = [];
  let pos = 0;
  const buf = Buffer.allocUnsafe(16 * 1024);
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl >= 0) {
      chunks.push(Buffer.from(buf.subarray(0, nl)));
      return { line: Buffer.concat(chunks).toString("utf8"), end: pos + nl + 1, hasNewline: true };
    }
    chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    pos += bytesRead;
  }
  return { line: Buffer.concat(chunks).toString("utf8"), end: pos, hasNewline: false };
}

/** Copies bytes [from, end of file) of `src` to the end of what `dst` holds. */
export async function copyTail(src: FileHandle, from: number, dst: FileHandle, dstPos: number): Promise<void> {
  const buf = Buffer.allocUnsafe(256 * 1024);
  let r = from;
  let w = dstPos;
  for (;;) {
    const { bytesRead } = await src.read(buf, 0, buf.length, r);
    if (bytesRead === 0) return;
    await writeAll(dst, buf.subarray(0, bytesRead), w);
    r += bytesRead;
    w += bytesRead;
  }
}
