import { hostname } from "node:os";
import { ConfigError, envOptional } from "@skein/runtime";
import type { Env } from "@skein/host";

/** Who this process is among the replicas on one database (GetStats.replica, the owner of its leases). */
export interface ReplicaIdentity {
  readonly id: string;
  /** Set once the server listens (SKEIN_REPLICA_ADDRESS wins). */
  address: string;
}

const ID_RULE = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * SKEIN_REPLICA_ID, default `<hostname>:<pid>`: unique per process even when
 * replicas share a host (or a pod restarts with the same hostname), so a
 * restarted replica never renews its dead predecessor's leases.
 */
export function replicaIdentity(env: Env): ReplicaIdentity {
  const id = envOptional("SKEIN_REPLICA_ID", env) ?? `${hostname()}:${process.pid}`;
  if (!ID_RULE.test(id)) throw new ConfigError(`SKEIN_REPLICA_ID=${JSON.stringify(id)} must be 1-128 characters of letters, digits and . _ : @ -`);
  return { id, address: envOptional("SKEIN_REPLICA_ADDRESS", env) ?? "" };
}
