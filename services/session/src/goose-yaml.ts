import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

/** One of goose's YAML files as read: the parsed document, or why there is none. */
export type GooseYaml = { readonly doc: unknown } | { readonly missing: true } | { readonly readError: string } | { readonly yamlError: string };

export function parseGooseYaml(text: string): GooseYaml {
  try {
    return { doc: parseYaml(text) as unknown };
  } catch (err) {
    return { yamlError: (err as Error).message };
  }
}

/**
 * goose's config.yaml is read for the provider settings and for the
 * service-wide extensions, each with its own error handling; this reads and
 * parses it once, on first use.
 */
export class GooseYamlFile {
  private result?: GooseYaml;

  constructor(readonly path: string) {}

  read(): GooseYaml {
    this.result ??= readGooseYaml(this.path);
    return this.result;
  }
}

function readGooseYaml(path: string): GooseYaml {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { missing: true };
    return { readError: (err as Error).message };
  }
  return parseGooseYaml(text);
}
