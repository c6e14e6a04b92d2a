/** Plain-text formatting for people; --json output bypasses all of this. */

/** Columns separated by two spaces, headers upper-cased; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  return all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd()).join("\n");
}

/** How long ago, coarsest unit that fits: "3s", "5m", "2h", "4d"; "-" when unknown. */
export function age(at: Date | undefined, now = Date.now()): string {
  if (!at || at.getTime() <= 0) return "-";
  const s = Math.max(0, Math.floor((now - at.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Local time as YYYY-MM-DD HH:MM:SS, or "-". */
export function localTime(at: Date | undefined): string {
  if (!at || at.getTime() <= 0) return "-";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${p(at.getMonth() + 1)}-${p(at.getDate())} ${p(at.getHours())}:${p(at.getMinutes())}:${p(at.getSeconds())}`;
}

/** Newlines and runs of whitespace folded, cut to `max` characters with an ellipsis. */
export function compact(s: string, max = 120): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** Lower-case enum name without its prefix: AGENT_STATE_RUNNING → running. */
export function enumLabel(name: string, prefix: string): string {
  return (name.startsWith(prefix) ? name.slice(prefix.length) : name).toLowerCase().replace(/_/g, "-");
}

/** Exactly one JSON document. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** A shell word: left alone when it needs no quoting, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
