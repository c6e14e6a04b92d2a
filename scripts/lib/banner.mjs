// What `npm start` prints once every service is listening, and when it stops.

/** An address a client on this host can dial (wildcards become loopback). */
function dialable(address) {
  return address.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
}

function grpcurl(ready, env) {
  const parts = ["grpcurl"];
  if (ready.tls === "off") parts.push("-plaintext");
  else parts.push(env.SKEIN_TLS_CA ? `-cacert ${env.SKEIN_TLS_CA}` : "-insecure");
  if (ready.auth) parts.push(`-H "authorization: Bearer $SKEIN_AUTH_TOKEN"`);
  const address = dialable(ready.address);
  if (address.startsWith("unix:")) parts.push("-unix", address.slice("unix:".length));
  else parts.push(address);
  parts.push("list");
  return parts.join(" ");
}

/**
 * The lines shown after start-up: where each service listens and what to try
 * next. `skein`: how the user's shell runs the CLI (`skein`, or `npx skein`
 * when it is not on their PATH); `noProvider`: why the session service has no
 * model provider, if it has none (it starts anyway; replies fail until one is set).
 */
export function startedBanner(readies, env, { skein = "npx skein", noProvider } = {}) {
  const width = Math.max(...readies.map((r) => r.service.length));
  const lines = ["", "skein is running:"];
  for (const r of readies) {
    const metrics = r.metrics ? `   metrics http://${dialable(r.metrics)}/metrics` : "";
    lines.push(`  ${r.service.padEnd(width)}  ${dialable(r.address)}${metrics}`);
  }
  lines.push("Next, in another terminal:");
  const names = readies.map((r) => r.service);
  if (names.includes("session")) lines.push(`  ${`${skein} chat`.padEnd(30)}  # talk to an agent`);
  if (names.includes("fleet")) lines.push(`  ${`${skein} fleet ls`.padEnd(30)}  # agents running in tmux`);
  for (const r of readies) lines.push(`  ${grpcurl(r, env)}`);
  if (names.includes("session") && noProvider) lines.push(`Replies will fail until a model provider is set: ${noProvider.replace(/^no model provider is configured: /, "")}`);
  lines.push("Ctrl-C stops the services.", "");
  return lines.join("\n");
}

/** Said on Ctrl-C: the fleet's agents live in tmux, not in the service. */
export function stoppingNote(services, env, skein = "npx skein") {
  const lines = [`stopping ${services.join(" and ")} (Ctrl-C again to end the grace period now)`];
  if (services.includes("fleet")) {
    const socket = env.SKEIN_TMUX_SOCKET || "skein-fleet";
    lines.push(
      `agents keep running in tmux: see them with \`tmux -L ${socket} ls\` (attach: \`tmux -L ${socket} attach -t =NAME\`);`,
      `\`npm run start:fleet\` supervises them again (\`${skein} fleet ls\`).`,
    );
  }
  return lines.join("\n");
}
