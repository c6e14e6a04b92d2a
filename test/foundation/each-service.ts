import { closeClients, startService, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, describe } from "vitest";

const SERVICES = [
  ["session", "skein.session.v1.SessionService"],
  ["fleet", "skein.fleet.v1.FleetService"],
] as const;

/**
 * A describe block per service, each with one running service process shared
 * by its tests (`svc()`), stopped afterwards.
 */
export function forEachService(title: string, body: (svc: () => ServiceProcess, name: "session" | "fleet", serviceName: string) => void): void {
  describe.each(SERVICES)(title, (name, serviceName) => {
    let svc: ServiceProcess;
    beforeAll(async () => {
      svc = await startService(name);
    });
    afterAll(async () => {
      closeClients();
      await svc?.stop();
    });
    body(() => svc, name, serviceName);
  });
}
