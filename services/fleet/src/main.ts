import { fleet } from "@skein/proto";
import { hosted, runMain, serve } from "@skein/runtime";
import { loadConfig } from "./config.js";
import { Fleet } from "./fleet.js";
import { fleetHandlers } from "./handlers.js";
import { registerFleetGauges } from "./metrics.js";

await runMain("fleet", async (log) => {
  const config = loadConfig();
  const f = new Fleet(config, log);
  await f.open();
  registerFleetGauges(f);
  log.info({ socket: config.socket, heartbeatDir: config.heartbeatDir, agents: f.list().length }, "fleet ready");
  return serve({
    addrVar: "SKEIN_FLEET_ADDR",
    defaultAddr: "127.0.0.1:50052",
    services: [hosted("skein.fleet.v1.FleetService", fleet.FleetServiceService, fleetHandlers(f))],
    log,
    // Agents outlive the service: only supervision stops.
    onShutdown: () => f.close(),
  });
});
