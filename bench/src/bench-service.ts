import { startService, type ServiceProcess } from "@skein/testkit";
import { forkChild, type BenchChild } from "./child.js";

/** The processes of a reply bench: provider, session service and client, each its own. */
export interface ReplyRig {
  readonly provider: BenchChild;
  readonly service: ServiceProcess;
  readonly client: BenchChild;
  stop(): Promise<void>;
}

/**
 * Starts the fake provider process, the built session service (as `npm start`
 * runs it, log level info) talking to it, and a client process connected to
 * the service. `env` adds or overrides service settings; `nodeArgs` are the
 * service's node flags.
 */
export async function startReplyRig(env: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<ReplyRig> {
  const started: Array<{ stop(): Promise<unknown> }> = [];
  const stop = async () => {
    for (const p of started.reverse()) await p.stop();
  };
  try {
    const provider = await forkChild("provider");
    started.push(provider);
    const service = await startService("session", {
      SKEIN_LOG_LEVEL: "info",
      SKEIN_PROVIDER: "openai",
      SKEIN_MODEL: "bench",
      OPENAI_BASE_URL: await provider.call<string>("baseURL"),
      SKEIN_PROVIDER_MAX_RETRIES: "0",
      SKEIN_SHUTDOWN_GRACE_MS: "2000",
      ...env,
    }, { nodeArgs });
    started.push(service);
    const client = await forkChild("reply-client");
    started.push(client);
    await client.call("connect", { address: service.address });
    return { provider, service, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
