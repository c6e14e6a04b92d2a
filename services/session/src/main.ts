import { createLogger, runMain } from "@skein/runtime";
import { startSessionServer } from "./server.js";

const log = createLogger("session");

await runMain(log, () => startSessionServer(process.env, log));
