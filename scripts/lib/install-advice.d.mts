/** What to do when `npm ci` fails, in one line, from npm's output. */
export function installAdvice(output: string): string;
