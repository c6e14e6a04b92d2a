/**
 * The service could not listen where its settings say (address in use,
 * permission denied, a host that does not resolve). Like a ConfigError it is
 * reported as one line naming the variable and exits 2: the setting cannot
 * work on this host as it stands.
 */
export class ListenError extends Error {
  override name = "ListenError";

  /** From a Node listen error (node:http). */
  static fromNode(variable: string, address: string, err: NodeJS.ErrnoException): ListenError {
    return new ListenError(`${variable}=${address}: cannot listen: ${describe(err.code, err.message)}`);
  }

  /** From grpc-js's bindAsync error, whose message lists each attempt's error. */
  static fromGrpc(variable: string, address: string, err: Error): ListenError {
    const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOENT|ENOTFOUND|EAI_AGAIN)\b/.exec(err.message)?.[1];
    // A unix socket is a file: EACCES/ENOENT there is about its directory, not a privileged port.
    const unix = address.startsWith("unix:") && (code === "EACCES" || code === "ENOENT");
    return new ListenError(`${variable}=${address}: cannot listen: ${unix ? "the socket's directory must exist and be writable" : describe(code, err.message)}`);
  }
}

function describe(code: string | undefined, message: string): string {
  switch (code) {
    case "EADDRINUSE":
      return "address already in use (another process listens there)";
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)";
    case "EADDRNOTAVAIL":
      return "no interface of this host has that address";
    case "ENOENT":
      return "the socket's directory does not exist";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the host name does not resolve";
    default:
      return message.replace(/\s+/g, " ").trim();
  }
}
