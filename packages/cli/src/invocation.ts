import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

let cached: string | undefined;

/**
 * How the user runs this CLI from their shell, for the hints it prints
 * (`resume with: skein chat ID`): `skein` when a `skein` is on their PATH
 * (`npm link` in the checkout, or `npm install -g .`), else `npx skein`, which
 * works in a checkout that is not linked. Under npx or npm run, npm has put the
 * checkout's node_modules/.bin on PATH for this process only: those
 * directories are not the user's shell's, so they do not count.
 */
export function skeinCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (env === process.env && cached !== undefined) return cached;
  const underNpm = env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;
  const dirs = (env.PATH ?? "").split(delimiter).filter((d) => d !== "" && !(underNpm && /[\\/]node_modules[\\/]\.bin[\\/]?$/.test(d)));
  const onPath = dirs.some((d) => {
    try {
      accessSync(join(d, "skein"), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  const command = onPath ? "skein" : "npx skein";
  if (env === process.env) cached = command;
  return command;
}
