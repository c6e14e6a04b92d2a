import { InvalidArgumentError } from "@skein/runtime";
import { KEEP_LINES_RANGE } from "./config.js";
import { launchCommand, shellQuote } from "./launch-command.js";
import { commandBytes, MAX_COMMAND_BYTES, newSessionCommands, respawnCommands } from "./tmux.js";

export interface LaunchParts {
  readonly name: string;
  readonly workdir: string;
  readonly command: string;
  readonly env: Readonly<Record<string, string>>;
  /** Every directory that could be baked into PATH (they are resolved again at each launch). */
  readonly binDirs: readonly string[];
}

/**
 * The launch line reaches the tmux server inside one tmux command, far below
 * the kernel's argument limits: checked before anything is touched, so a
 * request too large for tmux is refused as such (INVALID_ARGUMENT naming the
 * limit and the field that weighs most), not failed half-way.
 */
export function checkLaunchFits(p: LaunchParts): void {
  const shell = launchCommand({ binDirs: p.binDirs, env: p.env, command: p.command });
  // The largest history-limit a new session may carry (SKEIN_FLEET_KEEP_LINES) is counted in.
  const bytes = Math.max(commandBytes(newSessionCommands(p.name, p.workdir, shell, KEEP_LINES_RANGE.max)), commandBytes(respawnCommands(p.name, p.workdir, shell)));
  if (bytes <= MAX_COMMAND_BYTES) return;
  const weight: Record<string, number> = {
    command: Buffer.byteLength(p.command),
    env: Object.entries(p.env).reduce((n, [k, v]) => n + Buffer.byteLength(`export ${k}=${shellQuote(v)}; `), 0),
    runtime_bin_dirs: p.binDirs.reduce((n, d) => n + Buffer.byteLength(shellQuote(d)) + 1, 0),
    workdir: Buffer.byteLength(p.workdir),
  };
  const field = Object.entries(weight).sort((x, y) => y[1] - x[1])[0]![0];
  throw new InvalidArgumentError(
    field,
    `the launch line (command, env, runtime_bin_dirs and workdir together) makes a tmux command of ${bytes} bytes; tmux takes at most ${MAX_COMMAND_BYTES} bytes per command`,
  );
}
