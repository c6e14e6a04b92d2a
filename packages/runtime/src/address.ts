import { ConfigError } from "./config.js";

/** A listen address as an operator writes it: host:port, [v6]:port or unix:/path. */
export type ListenAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export const ADDRESS_RULE = "must be host:port (port 0-65535), [ipv6]:port or unix:/path";

/**
 * Parses a listen address up front, so a typo is reported as a bad setting
 * naming its variable rather than as whatever the socket layer says later.
 */
export function parseListenAddress(variable: string, value: string): ListenAddress {
  const bad = (rule = ADDRESS_RULE) => new ConfigError(`${variable}=${JSON.stringify(value)} ${rule}`);
  if (value.startsWith("unix:")) {
    const path = value.slice("unix:".length).replace(/^\/\/(?=\/)/, "");
    if (path === "") throw bad();
    return { kind: "unix", path };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):([^:]*)$/.exec(value);
  if (!m) throw bad();
  const host = m[1] ?? m[2]!;
  const portText = m[3]!;
  if (!/^\d{1,5}$/.test(portText)) throw bad(`has port ${JSON.stringify(portText)}: a port is a whole number 0-65535`);
  const port = Number(portText);
  if (port > 65535) throw bad(`has port ${port}: a port is a whole number 0-65535`);
  if (m[2] !== undefined && !/^[A-Za-z0-9._-]+$/.test(host)) throw bad(`has host ${JSON.stringify(host)}: not a hostname or IP address`);
  return { kind: "tcp", host, port };
}
