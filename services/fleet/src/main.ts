import { fleet } from "@skein/proto";
import { createLogger, hosted, runMain, serve } from "@skein/runtime";

const log = createLogger("fleet");

await runMain(log, () =>
  serve({
    addrVar: "SKEIN_FLEET_ADDR",
    defaultAddr: "127.0.0.1:50052",
    services: [hosted("skein.fleet.v1.FleetService", fleet.FleetServiceService, {})],
    log,
  }),
);
