import { readFileSync } from "node:fs";

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** A Dockerfile as stages of instructions (continuations joined, comments dropped). */
export function parseDockerfile(path: string): Stage[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const joined: string[] = [];
  let current = "";
  for (const raw of lines) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, "");
    if (line.endsWith("\\")) current += line.slice(0, -1) + " ";
    else {
      current += line;
      if (current.trim()) joined.push(current.trim());
      current = "";
    }
  }
  const stages: Stage[] = [];
  for (const l of joined) {
    const m = /^(\w+)\s+(.*)$/s.exec(l);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === "FROM") {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args)!;
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else if (op !== "ARG" || stages.length > 0) stages.at(-1)?.instructions.push({ op, args });
  }
  return stages;
}

/** The stage and every stage it is built FROM, nearest last. */
export function lineage(stages: Stage[], name: string): Stage[] {
  const out: Stage[] = [];
  for (let s = stages.find((x) => x.name === name); s; s = stages.find((x) => x.name === s!.from)) out.unshift(s);
  return out;
}

/** ENV instructions of a lineage as one map (later wins). */
export function envOf(stages: Stage[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of stages)
    for (const i of s.instructions.filter((x) => x.op === "ENV"))
      for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, "");
  return env;
}

/** The exec-form JSON array of the last instruction `op` in a lineage. */
export function execForm(stages: Stage[], op: string): string[] {
  const all = stages.flatMap((s) => s.instructions).filter((i) => i.op === op);
  const last = all.at(-1);
  if (!last) throw new Error(`no ${op}`);
  const json = last.args.slice(last.args.indexOf("["));
  return JSON.parse(json) as string[];
}
