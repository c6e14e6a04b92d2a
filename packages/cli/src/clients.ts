import { rootCertificates } from "node:tls";
import { credentials, Metadata, type CallOptions, type ChannelCredentials, type Client, type ClientOptions, type ServiceError } from "@grpc/grpc-js";
import { fleet, health, session } from "@skein/proto";
import { CliError, describeServiceError, isServiceError, type Target } from "./errors.js";
import { readPem as readPemFile, type Env } from "@skein/host";

export type ServiceName = "session" | "fleet";

const ADDR_VAR: Record<ServiceName, string> = { session: "SKEIN_SESSION_ADDR", fleet: "SKEIN_FLEET_ADDR" };
const DEFAULT_ADDR: Record<ServiceName, string> = { session: "127.0.0.1:50051", fleet: "127.0.0.1:50052" };

/** Unary calls give up after this long, so a wedged service cannot hang a script. */
export const UNARY_TIMEOUT_MS = 10_000;
/** StartAgent may wait behind a stop of the same agent (its grace period). */
export const START_TIMEOUT_MS = 60_000;

/** Connection settings: flags win over the environment the services also read. */
export interface ConnectionFlags {
  readonly "session-addr"?: string;
  readonly "fleet-addr"?: string;
  readonly token?: string;
  readonly "tls-ca"?: string;
  readonly "tls-cert"?: string;
  readonly "tls-key"?: string;
  readonly "tls-server-name"?: string;
}

export const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);

export interface Settings {
  readonly address: Record<ServiceName, string>;
  readonly token: string | undefined;
  readonly tls: { ca: string | undefined; cert: string | undefined; key: string | undefined; serverName: string | undefined } | undefined;
}

export function settingsFrom(flags: ConnectionFlags, env: Env = process.env): Settings {
  const ca = nonEmpty(flags["tls-ca"]) ?? nonEmpty(env.SKEIN_TLS_CA);
  const cert = nonEmpty(flags["tls-cert"]) ?? nonEmpty(env.SKEIN_TLS_CERT);
  const key = nonEmpty(flags["tls-key"]) ?? nonEmpty(env.SKEIN_TLS_KEY);
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliError("SKEIN_TLS_CERT and SKEIN_TLS_KEY (--tls-cert, --tls-key) must be set together for a client certificate");
  }
  return {
    address: {
      session: nonEmpty(flags["session-addr"]) ?? nonEmpty(env.SKEIN_SESSION_ADDR) ?? DEFAULT_ADDR.session,
      fleet: nonEmpty(flags["fleet-addr"]) ?? nonEmpty(env.SKEIN_FLEET_ADDR) ?? DEFAULT_ADDR.fleet,
    },
    token: nonEmpty(flags.token) ?? nonEmpty(env.SKEIN_AUTH_TOKEN),
    // The services serve TLS when given a certificate: so does the CLI, which then
    // verifies the server against SKEIN_TLS_CA, or else the system's roots plus
    // that certificate itself (a self-signed server, the container healthcheck).
    tls: ca || cert ? { ca, cert, key, serverName: nonEmpty(flags["tls-server-name"]) ?? nonEmpty(env.SKEIN_TLS_SERVER_NAME) } : undefined,
  };
}

function readPem(what: string, path: string): Buffer {
  const r = readPemFile(what, path);
  if ("error" in r) throw new CliError(r.error);
  return r.pem;
}

function channelCredentials(s: Settings): ChannelCredentials {
  if (!s.tls) return credentials.createInsecure();
  const { ca, cert, key } = s.tls;
  const roots = ca ? readPem("SKEIN_TLS_CA", ca) : Buffer.from(`${rootCertificates.join("\n")}\n${readPem("SKEIN_TLS_CERT", cert!).toString()}`);
  return credentials.createSsl(roots, key ? readPem("SKEIN_TLS_KEY", key) : null, cert ? readPem("SKEIN_TLS_CERT", cert) : null);
}

type UnaryMethod<Req, Res> = (req: Req, md: Metadata, opts: Partial<CallOptions>, cb: (err: ServiceError | null, res: Res) => void) => unknown;
type ClientCtor<C> = new (address: string, creds: ChannelCredentials, options?: ClientOptions) => C;

/** One service: its address, how to reach it, and errors phrased for it. */
export class Endpoint<C extends Client> {
  readonly client: C;
  readonly target: Target;

  constructor(
    service: ServiceName,
    Ctor: ClientCtor<C>,
    private readonly settings: Settings,
  ) {
    const address = settings.address[service];
    this.target = { service, address, addrVar: ADDR_VAR[service], tokenSet: settings.token !== undefined };
    const options: ClientOptions = {};
    if (settings.tls?.serverName) options["grpc.ssl_target_name_override"] = settings.tls.serverName;
    this.client = new Ctor(address, channelCredentials(settings), options);
  }

  metadata(): Metadata {
    const m = new Metadata();
    if (this.settings.token) m.set("authorization", `Bearer ${this.settings.token}`);
    return m;
  }

  /** A unary call with a deadline; failures become one-line CliErrors. */
  call<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, timeoutMs = UNARY_TIMEOUT_MS): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.client, req, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(this.error(err)) : resolve(res)));
    });
  }

  /** The one-line error for whatever a call or stream failed with. */
  error(err: unknown): unknown {
    return isServiceError(err) ? new CliError(describeServiceError(err, this.target)) : err;
  }

  close(): void {
    this.client.close();
  }
}

/** Creates endpoints lazily, so a command only needs the settings of what it uses. */
export class Connections {
  private readonly open: Endpoint<Client>[] = [];

  constructor(readonly settings: Settings) {}

  session(): Endpoint<session.SessionServiceClient> {
    return this.track(new Endpoint("session", session.SessionServiceClient, this.settings));
  }

  fleet(): Endpoint<fleet.FleetServiceClient> {
    return this.track(new Endpoint("fleet", fleet.FleetServiceClient, this.settings));
  }

  health(service: ServiceName): Endpoint<health.HealthClient> {
    return this.track(new Endpoint(service, health.HealthClient, this.settings));
  }

  closeAll(): void {
    for (const e of this.open.splice(0)) e.close();
  }

  private track<C extends Client>(e: Endpoint<C>): Endpoint<C> {
    this.open.push(e);
    return e;
  }
}
