import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { ConfigError, envEnum } from "./config.js";
import { UnauthenticatedError } from "./errors.js";

type Env = Record<string, string | undefined>;

/** Health: load balancers and orchestrators probe it without credentials. */
const HEALTH = "/grpc.health.v1.Health/";
/**
 * Reflection serves the contracts (the same .proto files this repository
 * publishes), nothing about sessions or agents. grpcurl resolves every method
 * through it, health included, so it is public unless the operator says otherwise.
 */
const REFLECTION = ["/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

export const REFLECTION_AUTH = ["public", "token"] as const;
export type ReflectionAuth = (typeof REFLECTION_AUTH)[number];

export function reflectionAuthFromEnv(env: Env = process.env): ReflectionAuth {
  return envEnum("SKEIN_REFLECTION_AUTH", REFLECTION_AUTH, "public", env);
}

/** Methods any caller may use without a token. */
export function isPublicMethod(path: string, reflection: ReflectionAuth): boolean {
  if (path.startsWith(HEALTH)) return true;
  return reflection === "public" && REFLECTION.some((prefix) => path.startsWith(prefix));
}

/**
 * SKEIN_AUTH_TOKEN: unset means no auth. Set but blank is a mistake (an empty
 * .env entry, a missing secret) that must not silently turn auth off. The value
 * itself never appears in the message.
 */
export function authTokenFromEnv(env: Env = process.env): string | undefined {
  const raw = env.SKEIN_AUTH_TOKEN;
  if (raw === undefined) return undefined;
  if (raw.trim() === "") {
    throw new ConfigError(
      `SKEIN_AUTH_TOKEN=${JSON.stringify(raw)} is set but empty: set a token (e.g. openssl rand -hex 32) or unset the variable to turn auth off`,
    );
  }
  if (raw !== raw.trim()) throw new ConfigError("SKEIN_AUTH_TOKEN starts or ends with whitespace, which an authorization header cannot carry: remove it");
  return raw;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * Checks `authorization: Bearer <token>`. Both sides are hashed first so the
 * comparison takes the same time whatever the length or content of the guess.
 */
export function checkBearer(metadata: Metadata, token: string): void {
  const values = metadata.get("authorization");
  const header = typeof values[0] === "string" ? values[0] : "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) throw new UnauthenticatedError("missing authorization metadata: send 'authorization: Bearer <SKEIN_AUTH_TOKEN>'");
  if (!timingSafeEqual(digest(match[1]!), digest(token))) throw new UnauthenticatedError("invalid bearer token");
}

/** True for addresses only this host can reach: 127.0.0.0/8, ::1, localhost, unix sockets. */
export function isLoopbackAddress(addr: string): boolean {
  if (addr.startsWith("unix:")) return true;
  const host = hostOf(addr);
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

function hostOf(addr: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(addr);
  if (bracketed) return bracketed[1]!;
  const i = addr.lastIndexOf(":");
  return i === -1 ? addr : addr.slice(0, i);
}

/** A service that runs commands must not listen beyond this host without a token. */
export function assertBindAllowed(addr: string, addrVar: string, token: string | undefined): void {
  if (token === undefined && !isLoopbackAddress(addr)) {
    throw new ConfigError(
      `refusing to listen on ${addr} (${addrVar}) without SKEIN_AUTH_TOKEN: any host that reaches it could ` +
        `run commands and read sessions. Set SKEIN_AUTH_TOKEN, or listen on a loopback address such as 127.0.0.1.`,
    );
  }
}
