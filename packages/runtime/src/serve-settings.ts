import type { ChannelOptions, ServerCredentials } from "@grpc/grpc-js";
import { parseListenAddress } from "./address.js";
import { assertBindAllowed, authTokenFromEnv, reflectionAuthFromEnv, type ReflectionAuth } from "./auth.js";
import { envInt, envString } from "./config.js";
import { serverCredentials } from "./credentials.js";
import { metricsSettings, type MetricsSettings } from "./metrics.js";

type Env = Record<string, string | undefined>;

export interface ServeSettings {
  readonly address: string;
  readonly authToken: string | undefined;
  readonly reflectionAuth: ReflectionAuth;
  readonly graceMs: number;
  readonly credentials: ServerCredentials;
  readonly tls: "off" | "tls" | "mtls";
  readonly metrics: MetricsSettings | undefined;
  readonly channelOptions: ChannelOptions;
}

/**
 * Every setting the runtime reads for a server, checked together. runMain
 * calls this before the service's own start-up, so a bad setting is reported
 * alone, before the domain logs or opens anything.
 */
export function readServeSettings(addrVar: string, defaultAddr: string, env: Env = process.env): ServeSettings {
  const address = envString(addrVar, defaultAddr, env);
  parseListenAddress(addrVar, address);
  const authToken = authTokenFromEnv(env);
  assertBindAllowed(address, addrVar, authToken);
  return {
    address,
    authToken,
    reflectionAuth: reflectionAuthFromEnv(env),
    graceMs: envInt("SKEIN_SHUTDOWN_GRACE_MS", 10_000, { min: 0, max: 3_600_000 }, env),
    ...serverCredentials(env),
    metrics: metricsSettings(addrVar, env),
    channelOptions: channelOptions(env),
  };
}

const MiB = 1024 * 1024;

/** The largest message the server sends (SKEIN_MAX_SEND_MESSAGE_BYTES); services size their responses under it. */
export function maxSendMessageBytes(env: Env): number {
  return envInt("SKEIN_MAX_SEND_MESSAGE_BYTES", 16 * MiB, { min: 1024, max: 256 * MiB }, env);
}

function channelOptions(env: Env): ChannelOptions {
  return {
    "grpc.keepalive_time_ms": envInt("SKEIN_KEEPALIVE_TIME_MS", 30_000, { min: 1_000, max: 86_400_000 }, env),
    "grpc.keepalive_timeout_ms": envInt("SKEIN_KEEPALIVE_TIMEOUT_MS", 10_000, { min: 1_000, max: 600_000 }, env),
    "grpc.keepalive_permit_without_calls": 1,
    // Clients may ping every 10 s without being told to calm down.
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    "grpc.max_receive_message_length": envInt("SKEIN_MAX_RECV_MESSAGE_BYTES", 4 * MiB, { min: 1024, max: 256 * MiB }, env),
    "grpc.max_send_message_length": maxSendMessageBytes(env),
  };
}
