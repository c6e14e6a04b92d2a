import { timingSafeEqual } from "node:crypto";
import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeAtomic } from "@skein/host";
import type { Logger } from "pino";
import type { ActivityName } from "./agent.js";

/** What a pane's environment holds for skein-fleet-signal (set by the launch line, not by the caller). */
export const SIGNAL_AGENT_VAR = "SKEIN_FLEET_AGENT";
export const SIGNAL_SECRET_VAR = "SKEIN_FLEET_SIGNAL_SECRET";
export const SIGNAL_SOCKET_VAR = "SKEIN_FLEET_SIGNAL_SOCKET";
export const SIGNAL_COMMAND = "skein-fleet-signal";
export const SIGNALLED: readonly Exclude<ActivityName, "unknown">[] = ["working", "waiting", "idle"];

/** The body skein-fleet-signal POSTs. */
export interface SignalRequest {
  agent: string;
  secret: string;
  activity: string;
  message: string;
}

export type SignalVerdict = "ok" | "refused" | "no-agent";


const MAX_BODY_BYTES = 16 * 1024;

/**
 * Listens on a Unix socket (0600) for skein-fleet-signal. Each request names
 * its agent and that agent's secret: one agent cannot speak for another.
 */
export class SignalServer {
  private server: Server | undefined;

  constructor(
    readonly path: string,
    private readonly handle: (agent: string, activity: Exclude<ActivityName, "unknown">, message: string, secretOk: (expected: string) => boolean) => SignalVerdict,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    // Whatever is at the path is a leftover of ours: the socket lock beside it is held.
    await rm(this.path, { force: true });
    const server = createServer((req, res) => {
      void this.answer(req).then(
        ([code, text]) => res.writeHead(code, { "content-type": "text/plain" }).end(`${text}\n`),
        (err: unknown) => {
          this.log.warn({ err }, "signal request failed");
          res.writeHead(500).end("internal error\n");
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => resolve());
    });
    await chmod(this.path, 0o600);
    this.server = server;
  }

  private async answer(req: IncomingMessage): Promise<[number, string]> {
    if (req.method !== "POST") return [405, "POST a signal"];
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY_BYTES) return [413, `body over ${MAX_BODY_BYTES} bytes`];
      chunks.push(c);
    }
    let body: Partial<SignalRequest>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Partial<SignalRequest>;
    } catch {
      return [400, "body is not JSON"];
    }
    const activity = SIGNALLED.find((s) => s === body.activity);
    if (!activity) return [400, `activity must be one of ${SIGNALLED.join(", ")}`];
    if (typeof body.agent !== "string" || typeof body.secret !== "string") return [400, "agent and secret are required"];
    const given = Buffer.from(body.secret);
    const secretOk = (expected: string) => expected !== "" && given.length === Buffer.byteLength(expected) && timingSafeEqual(given, Buffer.from(expected));
    const message = typeof body.message === "string" ? body.message.slice(0, 4096) : "";
    switch (this.handle(body.agent, activity, message, secretOk)) {
      case "ok":
        return [204, ""];
      case "refused":
        this.log.warn({ agent: body.agent }, "signal refused: wrong secret for that agent");
        return [403, `refused: wrong ${SIGNAL_SECRET_VAR} for agent ${body.agent}`];
      case "no-agent":
        return [404, `no running agent named ${JSON.stringify(body.agent)}`];
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}

/**
 * Writes the `skein-fleet-signal` command into `dir` (put first on every
 * pane's PATH): a shell script that runs the compiled command with this
 * service's node, so a pane's PATH need not hold node. Replaced atomically:
 * a pane may be running it meanwhile.
 */
export async function installSignalCommand(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const script = fileURLToPath(new URL("./signal-command.js", import.meta.url));
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await writeAtomic(join(dir, SIGNAL_COMMAND), `#!/bin/sh\nexec ${q(process.execPath)} ${q(script)} "$@"\n`, { mode: 0o755 });
}
