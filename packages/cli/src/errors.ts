import { status, type ServiceError } from "@grpc/grpc-js";

/** A failure the CLI reports as one line on stderr. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Wrong arguments: reported with a hint to --help, exit code 2. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message, 2);
  }
}

/** What an error message needs to know about the service a call went to. */
export interface Target {
  readonly service: "session" | "fleet";
  readonly address: string;
  readonly addrVar: string;
  readonly tokenSet: boolean;
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

const CONNECT_FAILURE = /No connection established|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|getaddrinfo|Name resolution failed|Failed to connect|Connection dropped/i;
/** UNAVAILABLE a service sent about its own storage ("the session database is unreachable: … (retry)"). */
const SERVICE_SENT = /^the session database is unreachable: /;
const TLS_FAILURE = /certificate|ssl|tls|handshake|self.signed|unable to verify/i;

/** The status code's name, e.g. NOT_FOUND. */
export function codeName(code: number): string {
  return status[code] ?? `code ${code}`;
}

/**
 * One line for a failed call. UNAVAILABLE from the channel itself (nothing
 * listening, TLS mismatch) is told apart from UNAVAILABLE a service sends
 * (e.g. while it shuts down), which keeps its own message.
 */
export function describeServiceError(err: ServiceError, t: Target): string {
  const details = err.details || err.message;
  switch (err.code) {
    case status.UNAVAILABLE:
      if (TLS_FAILURE.test(details) && CONNECT_FAILURE.test(details)) {
        return `TLS connection to the ${t.service} service at ${t.address} failed: ${lastError(details)} (check SKEIN_TLS_CA, SKEIN_TLS_CERT, SKEIN_TLS_KEY)`;
      }
      // The service's own UNAVAILABLE may quote its database's refused connection: that is not the CLI's.
      if (CONNECT_FAILURE.test(details) && !SERVICE_SENT.test(details)) {
        return `${t.service} service not reachable at ${t.address} (is it running? set ${t.addrVar})`;
      }
      break;
    case status.UNAUTHENTICATED:
      return t.tokenSet ? `UNAUTHENTICATED: ${details} (check SKEIN_AUTH_TOKEN)` : "UNAUTHENTICATED: set SKEIN_AUTH_TOKEN";
    case status.DEADLINE_EXCEEDED:
      return `DEADLINE_EXCEEDED: the ${t.service} service at ${t.address} did not answer in time`;
    case status.CANCELLED:
      if (/Cancelled on client/i.test(details)) return "cancelled";
      break;
  }
  return `${codeName(err.code)}: ${details}`;
}

// grpc-js: "No connection established. Last error: Error: <cause>"; the cause is what helps.
// OpenSSL causes look like "<hex>:error:<code>:<library>:<function>:<reason>:<file>:<line>:…".
function lastError(details: string): string {
  const openssl = /:error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+):/.exec(details);
  if (openssl) return openssl[1]!.trim();
  const m = /Last error: (?:Error: )?(.*?)(?: \(\d{4}-\d\d-\d\d.*\))?$/.exec(details);
  return (m?.[1] ?? details).trim();
}

/** One line for anything thrown: never a stack trace. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0]!;
  return String(err);
}
