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

/** The pid of the tmux server on `socket`, or undefined when none runs. */
export function tmuxServerPid(socket: string): number | undefined {
  try {
    return Number(execFileSync("tmux", ["-L", socket, "display-message", "-p", "#{pid}"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    return undefined;
  }
}

/** The tmux server's global environment (`show-environment -g`): set variables only, not the ones marked removed. */
export function tmuxGlobalEnv(socket: string): Record<string, string> {
  const out: Record<string, string> = {};
  // stderr goes into the thrown error, not into the test output.
  const text = execFileSync("tmux", ["-L", socket, "show-environment", "-g"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0 && !line.startsWith("-")) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}
