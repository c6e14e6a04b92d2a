import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { createLogger, type Logger, type RunningServer } from "@skein/runtime";
import { closeClients, connect, startOpenAIServer, type FakeModelServer } from "@skein/testkit";

/** The in-process session service; benchmarks read its state over its own API (GetStats). */
export type SessionServer = RunningServer;

export interface SessionBench {
  readonly dir: string;
  readonly log: Logger;
  readonly model: FakeModelServer;
  readonly server: SessionServer;
  readonly client: pb.SessionServiceClient;
}

/**
 * Runs `body` against the session service in this process (so its heap can be
 * measured after GC), talking to the testkit's fake OpenAI server, in a
 * throw-away directory; everything is stopped and removed afterwards. The
 * service is loaded from its build: bench does not compile it.
 */
export async function withSessionService<T>(
  name: string,
  opts: { env?: Record<string, string>; model?: Parameters<typeof startOpenAIServer>[0] },
  body: (b: SessionBench) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `skein-bench-${name}-`));
  const model = await startOpenAIServer(opts.model);
  const log = createLogger(name, { level: "silent" });
  const { startSessionServer } = (await import(new URL("../../services/session/dist/server.js", import.meta.url).href)) as {
    startSessionServer(env: Record<string, string>, log: Logger): Promise<SessionServer>;
  };
  const server = await startSessionServer(
    {
      SKEIN_SESSION_ADDR: "127.0.0.1:0",
      HOME: dir,
      SKEIN_SESSIONS_DIR: join(dir, "sessions"),
      SKEIN_PROVIDER: "openai",
      SKEIN_MODEL: "bench",
      OPENAI_BASE_URL: model.baseURL,
      SKEIN_PROVIDER_MAX_RETRIES: "0",
      SKEIN_SHUTDOWN_GRACE_MS: "1000",
      ...opts.env,
    },
    log,
  );
  try {
    return await body({ dir, log, model, server, client: connect(pb.SessionServiceClient, `127.0.0.1:${server.port}`) });
  } finally {
    closeClients();
    await server.shutdown("bench done");
    await model.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
