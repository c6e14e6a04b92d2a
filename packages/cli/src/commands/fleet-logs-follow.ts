import { setTimeout as sleep } from "node:timers/promises";
import { fleet } from "@skein/proto";
import type { Endpoint } from "../clients.js";
import { say } from "../command.js";
import { onInterrupt } from "../follow.js";
import { captureLines, unseenLines } from "../screen-diff.js";

/** How often the pane is looked at again. */
const POLL_MS = 500;
/**
 * Lines each look captures to line up with the last one: more new output than
 * this between two looks cannot be lined up, and the whole capture is printed.
 */
const WINDOW_LINES = 1000;

/** Whether no more output can come: stopped, or exited with no restart coming. */
export function hasEnded(a: fleet.Agent): boolean {
  const P = fleet.RestartPolicy;
  if (a.state === fleet.AgentState.AGENT_STATE_STOPPED) return true;
  if (a.state !== fleet.AgentState.AGENT_STATE_EXITED) return false;
  if (a.gaveUp) return true;
  switch (a.restartPolicy) {
    case P.RESTART_POLICY_ALWAYS:
      return false;
    case P.RESTART_POLICY_ON_FAILURE:
      return a.exitStatus === 0;
    default:
      return true;
  }
}

/**
 * `fleet logs -f`: the last `lines` lines, then new lines as the pane shows
 * them (by comparing captures), until Ctrl-C (exit 0) or the agent ends (its
 * last screen is printed, exit 0). Restarts by the restart policy are followed.
 */
export async function followLogs(f: Endpoint<fleet.FleetServiceClient>, name: string, lines: number, asJson: boolean): Promise<number> {
  const interrupted = new AbortController();
  const off = onInterrupt(() => interrupted.abort());
  const print = (out: readonly string[]) => {
    if (out.length === 0) return;
    if (asJson) say(JSON.stringify({ text: `${out.join("\n")}\n` }));
    else say(out.join("\n"));
  };
  try {
    let prev: string[] | undefined;
    for (;;) {
      // State first: once it says ended, the capture after it holds the final screen.
      const agent = (await f.call(f.client.getAgent, fleet.GetAgentRequest.fromPartial({ name }))).agent!;
      const text = (await f.call(f.client.captureOutput, fleet.CaptureOutputRequest.fromPartial({ name, lines: WINDOW_LINES }))).text;
      const cur = captureLines(text);
      print(prev === undefined ? cur.slice(-(lines || 100)) : unseenLines(prev, cur));
      prev = cur;
      if (hasEnded(agent) || interrupted.signal.aborted) return 0;
      try {
        await sleep(POLL_MS, undefined, { signal: interrupted.signal });
      } catch {
        return 0; // Ctrl-C
      }
    }
  } finally {
    off();
  }
}
