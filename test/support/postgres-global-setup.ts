import { startPostgres } from "@skein/testkit";
import type {} from "@skein/testkit/vitest";
import type { TestProject } from "vitest/node";

/**
 * One PostgreSQL cluster for the whole run: starting a cluster costs seconds,
 * and a database per test file (createDatabase) isolates the files as well.
 * Files attach with testPostgres() from `@skein/testkit/vitest`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startPostgres();
  project.provide("skeinPostgres", { port: cluster.port, password: cluster.password });
  return () => cluster.stop();
}
