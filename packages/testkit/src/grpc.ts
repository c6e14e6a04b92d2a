import { credentials, Metadata, type CallOptions, type Client, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";

/** Metadata with a bearer token and/or request id. */
export function md(opts: { token?: string; requestId?: string } = {}): Metadata {
  const m = new Metadata();
  if (opts.token) m.set("authorization", `Bearer ${opts.token}`);
  if (opts.requestId) m.set("x-request-id", opts.requestId);
  return m;
}

type ClientCtor<C> = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C;

const open = new Set<Client>();

/** A generated client on a loopback address; closeClients() closes them all. */
export function connect<C extends Client>(Ctor: ClientCtor<C>, address: string): C {
  const c = new Ctor(address, credentials.createInsecure());
  open.add(c);
  return c;
}

export function closeClients(): void {
  for (const c of open) c.close();
  open.clear();
}

/**
 * Calls a unary method of a generated client and resolves with its response.
 * Typed by the client's last overload (request, metadata, options, callback),
 * the one TypeScript infers from, so `Res` is the method's response type.
 */
export function call<Req, Res>(
  client: Client,
  method: (req: Req, metadata: Metadata, options: Partial<CallOptions>, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
  metadata: Metadata = new Metadata(),
  options: Partial<CallOptions> = {},
): Promise<Res> {
  return new Promise((resolve, reject) => method.call(client, req, metadata, options, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Reads a server stream to its end (or error). */
export async function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item as T);
  return out;
}

/** The status error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}
