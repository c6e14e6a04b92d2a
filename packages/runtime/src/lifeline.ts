import { Socket } from "node:net";
import { ConfigError, envInt } from "./config.js";

/**
 * A launcher (scripts/start-all.mjs, or any supervisor) passes one end of a
 * pipe or socket pair as SKEIN_LIFELINE_FD. The service reports readiness on
 * it as one JSON line, and shuts down gracefully when it reads EOF: the
 * launcher is gone, however it died (SIGKILL included), so nothing is left
 * to stop the service later.
 */
export interface Lifeline {
  /** Writes the ready line and starts watching for the launcher's end closing. */
  ready(info: Record<string, unknown>, onLost: () => void): void;
}

export function watchLifeline(env: Record<string, string | undefined> = process.env): Lifeline | undefined {
  if (env.SKEIN_LIFELINE_FD === undefined || env.SKEIN_LIFELINE_FD === "") return undefined;
  const fd = envInt("SKEIN_LIFELINE_FD", 3, { min: 3, max: 65_535 }, env);
  // The service's own children (tmux and its agents, extensions) do not inherit the
  // descriptor; nor must they inherit the variable, or a service started from one would look for it.
  delete env.SKEIN_LIFELINE_FD;
  let socket: Socket;
  try {
    socket = new Socket({ fd, readable: true, writable: true });
  } catch (err) {
    throw new ConfigError(`SKEIN_LIFELINE_FD=${fd} must be an open pipe or socket (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  // The lifeline must not keep the process alive on its own.
  socket.unref();
  let lost = false;
  let onLost: (() => void) | undefined;
  const lose = () => {
    if (lost) return;
    lost = true;
    onLost?.();
  };
  socket.on("end", lose);
  socket.on("close", lose);
  socket.on("error", lose);
  // Anything the launcher writes is ignored; reading is what notices EOF.
  socket.on("data", () => undefined);
  return {
    ready(info, callback) {
      onLost = callback;
      if (lost) return callback();
      socket.write(JSON.stringify({ ready: true, ...info }) + "\n");
    },
  };
}
