#!/usr/bin/env node
// The fleet tests drive real tmux; say how to get it rather than fail obscurely.
import { spawnSync } from "node:child_process";

const r = spawnSync("tmux", ["-V"], { encoding: "utf8" });
if (r.error || r.status !== 0) {
  console.error(
    "skein: tmux is not installed, and the fleet tests drive real tmux.\n" +
      "Install it with:  sudo apt-get update && sudo apt-get install -y tmux   (Debian/Ubuntu)\n" +
      "                  brew install tmux                                    (macOS)",
  );
  process.exit(1);
}
