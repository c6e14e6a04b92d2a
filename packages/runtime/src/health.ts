import { health } from "@skein/proto";
import { NotFoundError } from "./errors.js";
import type { CallContext } from "./context.js";
import { Broadcaster } from "./broadcast.js";
import { hosted, type HostedService } from "./service.js";

const { HealthCheckResponse_ServingStatus: Status, HealthService } = health;
type Status = health.HealthCheckResponse_ServingStatus;

/**
 * grpc.health.v1.Health: the overall status ("") and one per hosted service.
 * Watch streams see every change and end when shutdown begins (after they were
 * told NOT_SERVING).
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, Status>();
  /** Ticks on every change; watchers re-read the status they follow. */
  private readonly changes = new Broadcaster<void>();

  /** Hosted services that said they cannot do their work (the overall status follows them). */
  private readonly unable = new Set<string>();
  private shuttingDown = false;

  constructor(serviceNames: readonly string[]) {
    this.statuses.set("", Status.SERVING);
    for (const name of serviceNames) this.statuses.set(name, Status.SERVING);
  }

  setAllNotServing(): void {
    this.shuttingDown = true;
    for (const name of this.statuses.keys()) this.statuses.set(name, Status.NOT_SERVING);
    this.changes.publish();
  }

  /**
   * A hosted service reports whether it can do its work (e.g. the fleet
   * without tmux cannot); the overall status is SERVING only while every
   * service is. Ignored once shutdown began: then everything is NOT_SERVING.
   */
  setServing(service: string, serving: boolean): void {
    if (!this.statuses.has(service) || service === "") throw new Error(`setServing: ${JSON.stringify(service)} is not a hosted service`);
    if (this.shuttingDown) return;
    if (serving) this.unable.delete(service);
    else this.unable.add(service);
    const overall = this.unable.size === 0 ? Status.SERVING : Status.NOT_SERVING;
    const own = serving ? Status.SERVING : Status.NOT_SERVING;
    if (this.statuses.get(service) === own && this.statuses.get("") === overall) return;
    this.statuses.set(service, own);
    this.statuses.set("", overall);
    this.changes.publish();
  }

  service(): HostedService {
    return hosted("grpc.health.v1.Health", HealthService, {
      check: async (req) => {
        const s = this.statuses.get(req.service);
        if (s === undefined) throw new NotFoundError(`unknown service ${JSON.stringify(req.service)}`);
        return { status: s };
      },
      list: async () => ({
        statuses: Object.fromEntries([...this.statuses].map(([k, status]) => [k, { status }])),
      }),
      watch: (req, ctx) => this.watch(req.service, ctx),
    });
  }

  private async *watch(service: string, ctx: CallContext): AsyncGenerator<health.HealthCheckResponse> {
    // Subscribe before reading the current status so no change falls between.
    const changes = this.changes.subscribe([ctx.signal, ctx.draining], 16);
    let last = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
    try {
      yield { status: last };
      while ((await changes.nextBatch()) !== undefined) {
        const current = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
        if (current !== last) yield { status: (last = current) };
      }
    } finally {
      changes.close();
    }
  }
}
