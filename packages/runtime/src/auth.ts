import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { ConfigError } from "./config.js";
import { UnauthenticatedError } from "./errors.js";

/** Methods any caller may use without a token: load balancers and orchestrators probe them. */
const PUBLIC_SERVICES = ["/grpc.health.v1.Health/"];

export function isPublicMethod(path: string): boolean {
  return PUBLIC_SERVICES.some((prefix) => path.startsWith(prefix));
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
