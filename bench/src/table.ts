/** A printed result table: one benchmark section. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>;
  readonly notes?: readonly string[];
}

/** Markdown, so the output pastes into the README as is. */
export function formatTable(t: Table): string {
  const cell = (v: string | number) => (typeof v === "number" ? formatNumber(v) : v);
  const lines = [
    `### ${t.title}`,
    "",
    `| ${t.columns.join(" | ")} |`,
    `| ${t.columns.map(() => "---").join(" | ")} |`,
    ...t.rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
  if (t.notes?.length) lines.push("", ...t.notes.map((n) => `- ${n}`));
  return lines.join("\n");
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

export const MiB = 1024 * 1024;
