import { fleet } from "@skein/proto";
import { hosted, runMain, serve } from "@skein/runtime";
import { loadConfig } from "./config.js";
import { Fleet } from "./fleet.js";
import { fleetHandlers } from "./grpc/handlers.js";
import { registerFleetGauges } from "./metrics.js";
import { TmuxAvailability } from "./tmux-availability.js";

const SERVICE = "skein.fleet.v1.FleetService";

await runMain("fleet", async (log) => {
  const config = loadConfig();
  const f = new Fleet(config, log);
  await f.open();
  registerFleetGauges(f);
  log.info({ socket: config.socket, heartbeatDir: config.heartbeatDir, agents: f.list().length }, "fleet ready");
  let tmux: TmuxAvailability | undefined;
  try {
    return await serve({
      addrVar: "SKEIN_FLEET_ADDR",
      defaultAddr: "127.0.0.1:50052",
      services: [hosted(SERVICE, fleet.FleetServiceService, fleetHandlers(f))],
      log,
      // Without tmux no agent can start: NOT_SERVING, for this service and overall.
      onHealth: (health) => (tmux = new TmuxAvailability(log, (ok) => health.setServing(SERVICE, ok))).start(),
      // Agents outlive the service: only supervision stops.
      onShutdown: async () => {
        tmux?.stop();
        await f.close();
      },
    });
  } catch (err) {
    // Serving failed (a taken address, a bad metrics port): undo what open() started, socket lock included.
    tmux?.stop();
    await f.close();
    throw err;
  }
});
