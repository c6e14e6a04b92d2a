import { ServerCredentials } from "@grpc/grpc-js";
import { readPem as readPemFile, type Env } from "@skein/host";
import { ConfigError, envOptional } from "./config.js";

function readPem(variable: string, path: string): Buffer {
  const r = readPemFile(variable, path);
  if ("error" in r) throw new ConfigError(r.error);
  return r.pem;
}

/**
 * Plaintext unless SKEIN_TLS_CERT and SKEIN_TLS_KEY are set; with SKEIN_TLS_CA
 * too, clients must present a certificate signed by that CA (mTLS).
 */
export function serverCredentials(env: Env = process.env): { credentials: ServerCredentials; tls: "off" | "tls" | "mtls" } {
  const cert = envOptional("SKEIN_TLS_CERT", env);
  const key = envOptional("SKEIN_TLS_KEY", env);
  const ca = envOptional("SKEIN_TLS_CA", env);
  if (!cert && !key) {
    if (ca) throw new ConfigError("SKEIN_TLS_CA is set but SKEIN_TLS_CERT and SKEIN_TLS_KEY are not: mTLS needs a server certificate");
    return { credentials: ServerCredentials.createInsecure(), tls: "off" };
  }
  if (!cert || !key) throw new ConfigError("SKEIN_TLS_CERT and SKEIN_TLS_KEY must be set together");
  const pair = { cert_chain: readPem("SKEIN_TLS_CERT", cert), private_key: readPem("SKEIN_TLS_KEY", key) };
  const caPem = ca ? readPem("SKEIN_TLS_CA", ca) : null;
  return { credentials: ServerCredentials.createSsl(caPem, [pair], caPem !== null), tls: caPem ? "mtls" : "tls" };
}
