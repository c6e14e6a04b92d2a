// What grew between two heap snapshots of one process (the session bench writes
// them with SKEIN_BENCH_HEAP_SNAPSHOTS=dir):
//   node --max-old-space-size=4096 bench/dist/heap-snapshot-diff.js dir/warm.heapsnapshot dir/after.heapsnapshot
// Prints the growth by kind (compiled code and its metadata apart from JS data),
// the groups (node type : constructor) that grew most, and for the objects that
// are new in the second snapshot (ids are stable within one process) their
// first retainers, so "who holds it" reads off directly.
import { readFileSync } from "node:fs";

interface Snapshot {
  readonly nodes: number[];
  readonly edges: number[];
  readonly strings: string[];
  readonly nodeFields: number;
  readonly edgeFields: number;
  readonly nodeTypes: string[];
  readonly edgeTypes: string[];
  readonly count: number;
}

function load(path: string): Snapshot {
  const j = JSON.parse(readFileSync(path, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; edge_fields: string[]; node_types: [string[]]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const m = j.snapshot.meta;
  // Field order is fixed by V8: type, name, id, self_size, edge_count, …; edges: type, name_or_index, to_node.
  return { nodes: j.nodes, edges: j.edges, strings: j.strings, nodeFields: m.node_fields.length, edgeFields: m.edge_fields.length, nodeTypes: m.node_types[0], edgeTypes: m.edge_types[0], count: j.nodes.length / m.node_fields.length };
}

const typeOf = (s: Snapshot, i: number) => s.nodeTypes[s.nodes[i * s.nodeFields]!]!;
const nameOf = (s: Snapshot, i: number) => s.strings[s.nodes[i * s.nodeFields + 1]!]!;
const idOf = (s: Snapshot, i: number) => s.nodes[i * s.nodeFields + 2]!;
const sizeOf = (s: Snapshot, i: number) => s.nodes[i * s.nodeFields + 3]!;

function group(s: Snapshot, i: number): string {
  const t = typeOf(s, i);
  return ["string", "concatenated string", "sliced string", "number"].includes(t) ? t : `${t}:${nameOf(s, i).slice(0, 60)}`;
}

function kind(s: Snapshot, i: number): string {
  const t = typeOf(s, i);
  if (t === "code") return "compiled code, bytecode, feedback, deopt data";
  if (t === "object shape") return "hidden classes";
  if (t === "hidden") return nameOf(s, i).includes("WeakArrayList") ? "dependent-code lists" : "other V8 internals";
  if (t === "native") return "native (node internals)";
  return "JS data (objects, arrays, strings, closures)";
}

function sums(s: Snapshot, key: (s: Snapshot, i: number) => string, only?: (i: number) => boolean): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < s.count; i++) {
    if (only && !only(i)) continue;
    const v = out.get(key(s, i)) ?? [0, 0];
    v[0]++;
    v[1] += sizeOf(s, i);
    out.set(key(s, i), v);
  }
  return out;
}

/** The first strong retainer of every node: enough to name who holds a group. */
function firstRetainers(s: Snapshot): Array<[number, string] | undefined> {
  const out: Array<[number, string] | undefined> = new Array(s.count);
  let e = 0;
  for (let i = 0; i < s.count; i++) {
    const n = s.nodes[i * s.nodeFields + 4]!;
    for (let k = 0; k < n; k++, e += s.edgeFields) {
      const type = s.edgeTypes[s.edges[e]!]!;
      const to = s.edges[e + 2]! / s.nodeFields;
      if (type === "weak" || out[to]) continue;
      const label = type === "element" || type === "hidden" ? "" : s.strings[s.edges[e + 1]!]!;
      const name = /^\d*$/.test(label) ? "[n]" : label;
      out[to] = [i, `${group(s, i)}.${name}`];
    }
  }
  return out;
}

const mib = (n: number) => (n / 1048576).toFixed(2).padStart(7);
const [pathA, pathB] = process.argv.slice(2);
if (!pathA || !pathB) {
  process.stderr.write("usage: heap-snapshot-diff.js before.heapsnapshot after.heapsnapshot\n");
  process.exit(2);
}
const a = load(pathA);
const b = load(pathB);

console.log("growth by kind (MiB: before, after, growth)");
const ka = sums(a, kind);
const kb = sums(b, kind);
for (const k of new Set([...ka.keys(), ...kb.keys()])) console.log(`${mib(ka.get(k)?.[1] ?? 0)} ${mib(kb.get(k)?.[1] ?? 0)} ${mib((kb.get(k)?.[1] ?? 0) - (ka.get(k)?.[1] ?? 0))}  ${k}`);

console.log("\ngroups that grew most (bytes, count)");
const ga = sums(a, group);
const gb = sums(b, group);
const grown = [...new Set([...ga.keys(), ...gb.keys()])].map((k) => [k, (gb.get(k)?.[0] ?? 0) - (ga.get(k)?.[0] ?? 0), (gb.get(k)?.[1] ?? 0) - (ga.get(k)?.[1] ?? 0)] as const);
for (const [k, n, bytes] of grown.sort((x, y) => y[2] - x[2]).slice(0, 30)) console.log(`${String(bytes).padStart(10)} ${String(n).padStart(7)}  ${k}`);

console.log("\nnew JS data by retainer path (bytes, count): the top 30");
const before = new Set<number>();
for (let i = 0; i < a.count; i++) before.add(idOf(a, i));
const retainers = firstRetainers(b);
const path = (_: Snapshot, i: number) => {
  const steps = [group(b, i)];
  for (let cur = i, d = 0; d < 4; d++) {
    const r = retainers[cur];
    if (!r) break;
    steps.push(r[1]);
    cur = r[0];
  }
  return steps.join(" <- ");
};
const fresh = sums(b, path, (i) => !before.has(idOf(b, i)) && kind(b, i).startsWith("JS data"));
for (const [k, [n, bytes]] of [...fresh].sort((x, y) => y[1][1] - x[1][1]).slice(0, 30)) console.log(`${String(bytes).padStart(10)} ${String(n).padStart(7)}  ${k}`);
