import { spawnSync } from "node:child_process";

/**
 * Whether an OS program a test drives is installed. Tests needing one that
 * `npm test` does not require (strace, zsh) skip without it; the preflight
 * (scripts/check-test-tools.mjs) has already said what to install.
 */
export function haveProgram(cmd: string, versionFlag = "--version"): boolean {
  const r = spawnSync(cmd, [versionFlag], { stdio: "ignore" });
  return !r.error && r.status === 0;
}
