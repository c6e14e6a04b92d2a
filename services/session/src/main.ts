import { runMain } from "@skein/runtime";
import { startSessionServer } from "./server.js";

await runMain("session", (log) => startSessionServer(process.env, log));
