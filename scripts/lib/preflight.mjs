// Settings `npm start` checks before starting anything, so that a bad one is
// reported once, as one line, rather than once per service.

const ADDR_VAR = { session: "SKEIN_SESSION_ADDR", fleet: "SKEIN_FLEET_ADDR" };

/**
 * Returns the one-line problem, or undefined. `runtime` is the built
 * @skein/runtime (imported once the checkout is built).
 */
export function preflight(services, env, runtime) {
  try {
    runtime.logSettings(env);
    for (const s of services) runtime.readServeSettings(ADDR_VAR[s], "127.0.0.1:0", env);
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
