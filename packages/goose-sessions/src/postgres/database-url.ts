/**
 * SKEIN_DATABASE_URL is a libpq URL (postgresql://user:password@host:port/db?…).
 * Its password must never reach a log line or an error a client sees: every
 * text that may contain the URL goes through redact().
 */

const MASK = "***";

/** The URL with its password (and a `password=` query parameter) masked. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = MASK;
    if (u.searchParams.has("password")) u.searchParams.set("password", MASK);
    return u.toString();
  } catch {
    // Not parseable: mask anything between "//user:" and "@", and key=value passwords.
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, `$1${MASK}@`).replace(/(password=)[^&\s]*/gi, `$1${MASK}`);
  }
}

/** The password the URL carries, decoded, or undefined. */
export function passwordOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    const p = u.password !== "" ? decodeURIComponent(u.password) : (u.searchParams.get("password") ?? "");
    return p === "" ? undefined : p;
  } catch {
    return undefined;
  }
}

/**
 * A function that masks the URL's password (raw and percent-encoded forms) in
 * any text: driver errors sometimes quote the connection string.
 */
export function redactorFor(url: string): (text: string) => string {
  const password = passwordOf(url);
  const forms = password === undefined ? [] : [...new Set([password, encodeURIComponent(password)])].filter((f) => f.length > 0);
  return (text) => {
    let out = text.split(url).join(redactUrl(url));
    for (const f of forms) out = out.split(f).join(MASK);
    return out;
  };
}

/** Checks the URL's form for SKEIN_DATABASE_URL; the reason names the rule (never the password). */
export function databaseUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "must be a libpq URL such as postgresql://user:password@host:5432/skein";
  }
  if (u.protocol !== "postgresql:" && u.protocol !== "postgres:") return `must start with postgresql:// (got ${u.protocol}//)`;
  if (u.hostname === "" && !u.searchParams.has("host")) return "must name a host (postgresql://user@host/db or ?host=/socket/dir)";
  return undefined;
}
