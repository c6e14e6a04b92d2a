import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tmuxSocketDir } from "@skein/host";

/** Ends a throw-away tmux server and removes the socket file tmux leaves behind. */
export function killTmuxServer(socket: string, env: Record<string, string | undefined> = process.env): void {
  try {
    execFileSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore", env: { ...process.env, ...env } });
  } catch {
    // no server was running
  }
  rmSync(join(tmuxSocketDir(env), socket), { force: true });
}
