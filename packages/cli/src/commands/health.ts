import { health } from "@skein/proto";
import type { Connections, ServiceName } from "../clients.js";
import { say, type Command } from "../command.js";
import { describe } from "../errors.js";
import { json } from "../format.js";
import { jsonOption } from "../options.js";

/** A healthcheck must answer quickly, whatever the service is doing. */
const HEALTH_TIMEOUT_MS = 5_000;

interface Result {
  readonly service: ServiceName;
  readonly address: string;
  /** SERVING, NOT_SERVING, … or UNREACHABLE when the check itself failed. */
  readonly status: string;
  /** Why the check failed; null when it did not (always present in --json). */
  readonly error: string | null;
}

async function check(conn: Connections, service: ServiceName): Promise<Result> {
  const h = conn.health(service);
  const address = h.target.address;
  try {
    // "" is the overall status of the server.
    const res = await h.call(h.client.check, health.HealthCheckRequest.fromPartial({ service: "" }), HEALTH_TIMEOUT_MS);
    return { service, address, status: health.healthCheckResponse_ServingStatusToJSON(res.status), error: null };
  } catch (err) {
    return { service, address, status: "UNREACHABLE", error: describe(err) };
  }
}

const healthCommand: Command = {
  name: "health",
  synopsis: "[--service session|fleet]",
  summary: "check the services' grpc.health.v1 status (exit 0 only when all checked are SERVING)",
  options: {
    service: { type: "string", value: "S", help: "check only this service (for per-service container healthchecks)", choices: ["session", "fleet"] },
    ...jsonOption(),
  },
  services: ["session", "fleet"],
  async run(inv) {
    inv.atMost(0);
    const only = inv.string("service");
    if (only !== undefined && only !== "session" && only !== "fleet") throw inv.usage(`--service must be session or fleet, got ${JSON.stringify(only)}`);
    const services: ServiceName[] = only ? [only] : ["session", "fleet"];
    const results = await Promise.all(services.map((s) => check(inv.conn, s)));
    if (inv.json) say(json(Object.fromEntries(results.map(({ service, ...r }) => [service, r]))));
    else for (const r of results) say(`${r.service.padEnd(7)}  ${r.status.padEnd(11)}  ${r.address}${r.error ? `  ${r.error}` : ""}`);
    return results.every((r) => r.status === "SERVING") ? 0 : 1;
  },
};

export const healthCommands: readonly Command[] = [healthCommand];
