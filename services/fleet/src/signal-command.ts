/**
 * skein-fleet-signal waiting|working|idle [--message TEXT]: an agent (or its
 * hooks) tells the fleet what it does. Run inside an agent's pane, where the
 * fleet put it on PATH and set SKEIN_FLEET_AGENT, SKEIN_FLEET_SIGNAL_SECRET
 * and SKEIN_FLEET_SIGNAL_SOCKET. Exit 0 accepted, 1 refused or unreachable,
 * 2 bad usage. Extra arguments that are JSON (codex's notify passes one) are
 * accepted and ignored.
 */
import { request } from "node:http";
import { SIGNAL_AGENT_VAR, SIGNAL_COMMAND, SIGNAL_SECRET_VAR, SIGNAL_SOCKET_VAR, SIGNALLED } from "./signal-server.js";

const USAGE = `usage: ${SIGNAL_COMMAND} ${SIGNALLED.join("|")} [--message TEXT]`;

function fail(code: number, message: string): never {
  process.stderr.write(`${SIGNAL_COMMAND}: ${message}\n`);
  process.exit(code);
}

function parse(argv: readonly string[]): { activity: string; message: string } {
  let activity: string | undefined;
  let message = "";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === "--message" || arg === "-m") {
      if (i + 1 >= argv.length) fail(2, `${arg} needs a value\n${USAGE}`);
      message = argv[++i]!;
    } else if (arg.startsWith("--message=")) {
      message = arg.slice("--message=".length);
    } else if (activity === undefined && (SIGNALLED as readonly string[]).includes(arg)) {
      activity = arg;
    } else if (!arg.trimStart().startsWith("{")) {
      fail(2, `unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
    }
  }
  if (activity === undefined) fail(2, USAGE);
  return { activity, message };
}

const { activity, message } = parse(process.argv.slice(2));
const agent = process.env[SIGNAL_AGENT_VAR];
const secret = process.env[SIGNAL_SECRET_VAR];
const socketPath = process.env[SIGNAL_SOCKET_VAR];
if (!agent || !secret || !socketPath) fail(2, `${SIGNAL_AGENT_VAR}, ${SIGNAL_SECRET_VAR} and ${SIGNAL_SOCKET_VAR} must be set (they are in a pane the fleet started)`);

const body = JSON.stringify({ agent, secret, activity, message });
const req = request({ socketPath, path: "/", method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, timeout: 5_000 }, (res) => {
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => (text += c));
  res.on("end", () => {
    if (res.statusCode === 204) process.exit(0);
    fail(res.statusCode === 400 ? 2 : 1, text.trim() || `the fleet answered ${res.statusCode}`);
  });
});
req.on("timeout", () => req.destroy(new Error("no answer within 5s")));
req.on("error", (err) => fail(1, `cannot reach the fleet service at ${socketPath}: ${err.message}`));
req.end(body);
