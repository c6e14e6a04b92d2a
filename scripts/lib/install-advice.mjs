// What to do when `npm ci` fails, in one line, from what npm printed. Node
// built-ins only: it runs when nothing is installed.

/** The advice for npm's output `output` (its stdout and stderr together). */
export function installAdvice(output) {
  // better-sqlite3 (the goose sessions.db store) is native: its install script
  // downloads a prebuilt binary from GitHub, else compiles with node-gyp, which
  // needs a C++ toolchain and Node's headers (downloaded from nodejs.org unless
  // npm_config_nodedir points at installed ones).
  if (/better-sqlite3/.test(output) && /gyp|prebuild|install script|command failed/i.test(output)) {
    return (
      "better-sqlite3 could not get its native binary: allow network access to github.com for its prebuilt binary, " +
      "or install a C++ compiler (Debian: sudo apt-get install -y build-essential python3; macOS: xcode-select --install) " +
      "and, if nodejs.org is unreachable, point npm_config_nodedir at your Node's install directory (it holds include/node), then run npm ci again"
    );
  }
  if (/\b(ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|E404|EAI_FAIL)\b|network/i.test(output)) {
    return "npm could not download packages: check network access to the registry (npm config get registry; proxy settings), then run npm ci again";
  }
  if (/\bEACCES\b|\bEPERM\b/.test(output)) return "npm was denied access to a file: check the checkout and node_modules are yours (not root's), then run npm ci again";
  if (/\bENOSPC\b/.test(output)) return "the disk is full: free some space, then run npm ci again";
  if (/\bEBADENGINE\b|Unsupported engine/.test(output)) return `this checkout needs Node >= 20.10 (this is ${process.version}): install a newer Node, then run npm ci again`;
  return "see npm's output above, fix what it names, then run npm ci again";
}
