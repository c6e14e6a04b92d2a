// Settings `npm start` checks before starting anything, so that a bad one is
// reported once, as one line, rather than once per service (or after the
// other service has started).
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ADDR_VAR = { session: "SKEIN_SESSION_ADDR", fleet: "SKEIN_FLEET_ADDR" };

/**
 * Returns the one-line problem, or undefined. `runtime` is the built
 * @skein/runtime (imported once the checkout is built).
 */
export async function preflight(root, services, env, runtime) {
  try {
    runtime.logSettings(env);
    for (const s of services) runtime.readServeSettings(ADDR_VAR[s], "127.0.0.1:0", env);
    for (const s of services) await DOMAIN_CHECKS[s](root, { ...env }, runtime);
  } catch (err) {
    if (err instanceof runtime.ConfigError) return err.message;
    throw err;
  }
  return metricsConflict(services, env, runtime);
}

/** Two services told to serve metrics on the same fixed port would fail at the second bind. */
function metricsConflict(services, env, runtime) {
  const byAddress = new Map();
  for (const s of services) {
    const m = runtime.metricsSettings(ADDR_VAR[s], env);
    if (!m || m.port === 0) continue;
    const key = `${m.host}:${m.port}`;
    const other = byAddress.get(key);
    if (other) {
      const vars = [other, { s, m }].map(({ m: x }) => x.variable);
      const said = vars[0] === vars[1] ? `${vars[0]}=${m.address} is` : `${vars[0]} and ${vars[1]} are both ${m.address},`;
      return (
        `${said} the metrics address of both ${other.s} and ${s}: give each its own ` +
        `(${services.map((x) => `${ADDR_VAR[x].replace(/_ADDR$/, "_METRICS_ADDR")}`).join(", ")}), or use port 0`
      );
    }
    byAddress.set(key, { s, m });
  }
  return undefined;
}

/** Each service's own settings, read by the same code the service runs (from its build). */
const DOMAIN_CHECKS = {
  async session(root, env, runtime) {
    const config = await load(root, "services/session/dist/config.js");
    const extensions = await load(root, "services/session/dist/extensions/service-config.js");
    config?.loadConfig(env, runtime.createLogger("preflight", { level: "silent" }));
    if (env.SKEIN_EXTENSIONS?.trim()) extensions?.parseSkeinExtensions(env.SKEIN_EXTENSIONS);
  },
  async fleet(root, env) {
    (await load(root, "services/fleet/dist/config.js"))?.loadConfig(env);
  },
};

/**
 * Why the session service will have no model provider (the same message its
 * Reply answers with), or undefined when one is configured. It starts without
 * one, so `npm start`'s banner says so rather than leave it to the first reply.
 */
export async function missingProvider(root, env, runtime) {
  const config = await load(root, "services/session/dist/config.js");
  const loaded = config?.loadConfig({ ...env }, runtime.createLogger("preflight", { level: "silent" }));
  return loaded?.provider.missing;
}

/** A module of a service's build; undefined if it moved (the service then reports its own settings). */
async function load(root, path) {
  try {
    return await import(pathToFileURL(join(root, path)).href);
  } catch {
    return undefined;
  }
}
