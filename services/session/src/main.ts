import { session } from "@skein/proto";
import { createLogger, hosted, runMain, serve } from "@skein/runtime";

const log = createLogger("session");

await runMain(log, () =>
  serve({
    addrVar: "SKEIN_SESSION_ADDR",
    defaultAddr: "127.0.0.1:50051",
    services: [hosted("skein.session.v1.SessionService", session.SessionServiceService, {})],
    log,
  }),
);
