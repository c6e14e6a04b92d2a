import { inject } from "vitest";
import { attachPostgres, startPostgres, type PostgresAddress, type PostgresCluster } from "./postgres.js";

/**
 * What needs vitest itself, apart from the rest of the testkit (which the
 * benchmarks import outside vitest).
 */

declare module "vitest" {
  export interface ProvidedContext {
    /** The suite's shared PostgreSQL cluster (test/support/postgres-global-setup.ts). */
    skeinPostgres?: PostgresAddress;
  }
}

/**
 * A PostgreSQL cluster for one test file: the suite's shared one when the run
 * started it (a database per createDatabase(), dropped by stop()), else one of
 * the file's own, so a file run under another configuration still works.
 */
export async function testPostgres(): Promise<PostgresCluster> {
  const shared = inject("skeinPostgres");
  return shared ? attachPostgres(shared) : startPostgres();
}
