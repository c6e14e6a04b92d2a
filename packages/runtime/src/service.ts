import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { adaptBidiStream } from "./bidi-stream.js";
import type { CallEnvironment } from "./call.js";
import type { BidiStreamHandler, ServerStreamHandler, UnaryHandler } from "./context.js";
import { refusalAwareSerializer } from "./batched-writes.js";
import { tolerantDeserializer } from "./malformed.js";
import { adaptServerStream } from "./server-stream.js";
import { adaptUnary } from "./unary.js";

interface MethodShape<Req, Res, ReqStream extends boolean, ResStream extends boolean> {
  path: string;
  requestStream: ReqStream;
  responseStream: ResStream;
  requestDeserialize: (b: Buffer) => Req;
  responseSerialize: (v: Res) => Buffer;
}

/** The handler type a generated method definition calls for. */
export type HandlerFor<M> =
  M extends MethodShape<infer Req, infer Res, false, false>
    ? UnaryHandler<Req, Res>
    : M extends MethodShape<infer Req, infer Res, false, true>
      ? ServerStreamHandler<Req, Res>
      : M extends MethodShape<infer Req, infer Res, true, true>
        ? BidiStreamHandler<Req, Res>
        : never;

/** Handlers for every method of a generated service definition (ts-proto, grpc-js). */
export type ServiceImplementation<D> = { [K in keyof D]: HandlerFor<D[K]> };

/** A service the server hosts: its definition, handlers and health/reflection name. */
export interface HostedService {
  /** Fully-qualified name, e.g. skein.session.v1.SessionService. */
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: Record<string, unknown>;
}

/**
 * A service with handlers for some or all of its methods; grpc-js answers the
 * methods without one with UNIMPLEMENTED.
 */
export function hosted<D extends ServiceDefinition>(name: string, definition: D, implementation: Partial<ServiceImplementation<D>>): HostedService {
  return { name, definition, implementation: implementation as Record<string, unknown> };
}

/**
 * The definition grpc-js is given: requests that do not parse reach the
 * handler as a marker (see MalformedRequest) instead of failing before it,
 * and responses grpc-js will refuse are known to the batched writes.
 */
export function servedDefinition(definition: ServiceDefinition, maxSendBytes: number): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [key, def] of Object.entries(definition)) {
    out[key] = { ...def, requestDeserialize: tolerantDeserializer(def.requestDeserialize), responseSerialize: refusalAwareSerializer(def.responseSerialize, maxSendBytes) };
  }
  return out as ServiceDefinition;
}

/** Wraps each handler with the call scope that fits its call kind. */
export function bindService(svc: HostedService, env: CallEnvironment): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(svc.definition)) {
    const handler = svc.implementation[key];
    if (handler === undefined) continue;
    if (typeof handler !== "function") throw new Error(`${svc.name}: handler for ${def.path} is not a function`);
    if (!def.requestStream && !def.responseStream) out[key] = adaptUnary(def.path, handler as UnaryHandler<unknown, unknown>, env);
    else if (!def.requestStream && def.responseStream) out[key] = adaptServerStream(def.path, handler as ServerStreamHandler<unknown, unknown>, env);
    else if (def.requestStream && def.responseStream) out[key] = adaptBidiStream(def.path, handler as BidiStreamHandler<unknown, unknown>, env);
    else throw new Error(`${def.path}: client-streaming calls are not supported by the runtime`);
  }
  return out;
}
