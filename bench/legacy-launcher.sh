#!/usr/bin/env bash
# The kind of launcher skein-fleet-start replaces, kept only as the baseline of
# the fleet benchmark: tmux new-session on a dedicated socket, PATH baked in,
# exec, and one `setsid bash` heartbeat loop per agent (date, mv and sleep
# forked on every beat).
set -euo pipefail
agent="$1"
socket="${MOSAIC_TMUX_SOCKET:-mosaic}"
workdir="${MOSAIC_AGENT_WORKDIR:-$PWD}"
command="${MOSAIC_AGENT_COMMAND:?MOSAIC_AGENT_COMMAND is required}"
runtime="${MOSAIC_AGENT_RUNTIME:-}"
hb_dir="${MOSAIC_HEARTBEAT_RUN_DIR:-${XDG_RUNTIME_DIR:-/tmp}/mosaic-heartbeats}"
interval="${MOSAIC_HEARTBEAT_INTERVAL:-15}"

if tmux -L "$socket" has-session -t "=$agent" 2>/dev/null; then
  echo "already running"
  exit 0
fi

path_prefix=""
IFS=: read -r -a runtime_bins <<<"${MOSAIC_RUNTIME_BIN:-}"
for d in "${runtime_bins[@]}" "$HOME/.npm-global/bin" "$HOME/.local/bin"; do
  if [ -n "$d" ] && [ -d "$d" ]; then path_prefix="$path_prefix$d:"; fi
done
tmux -L "$socket" new-session -d -s "$agent" -c "$workdir" "export PATH=\"${path_prefix}\$PATH\"; exec $command"
pid=$(tmux -L "$socket" display-message -p -t "=$agent:" '#{pane_pid}')

mkdir -p "$hb_dir"
setsid bash -c '
  while kill -0 "$1" 2>/dev/null; do
    printf "ts=%s\npid=%s\nstatus=ok\nruntime=%s\nagent=%s\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$3" "$2" >"$4.tmp"
    mv -f "$4.tmp" "$4"
    sleep "$5"
  done' heartbeat "$pid" "$agent" "$runtime" "$hb_dir/$agent.hb" "$interval" </dev/null >/dev/null 2>&1 &
echo "$!" >"$hb_dir/$agent.loop.pid"
echo "started $agent"
