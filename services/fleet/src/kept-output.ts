import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeAtomic } from "@skein/host";

/**
 * The last screen of each agent whose pane ended (exited or stopped), one file
 * per agent in a directory beside the state file, so `fleet logs` still has
 * it once the pane is gone, also after the service restarted. Files are
 * replaced atomically and private (0600): agents print secrets too.
 */
export class KeptOutput {
  readonly dir: string;

  constructor(stateDir: string, socket: string) {
    this.dir = join(stateDir, `fleet-${socket}-output`);
  }

  private path(name: string): string {
    return join(this.dir, `${name}.txt`);
  }

  async save(name: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.path(name), text);
  }

  /** The kept screen, or undefined when none was kept. */
  async read(name: string): Promise<string | undefined> {
    try {
      return await readFile(this.path(name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }
}
