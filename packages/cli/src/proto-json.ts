/**
 * JSON for --json output with every field present. ts-proto's toJSON leaves
 * out fields holding their default (0, "", false, [], the zero enum), as
 * proto3's JSON mapping allows; a script reading `messageCount` must not have
 * to guess that a missing key means 0. So the CLI fills them back in from the
 * contract's descriptors: zero values for plain fields, [] and {} for lists
 * and maps, the zero enum name, and null for an unset message or optional
 * field. Members of a real oneof stay out except the one that is set.
 */
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, ScalarType, type DescField, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { descriptorSetPath } from "@skein/proto";

let registry: FileRegistry | undefined;

function messageDesc(typeName: string): DescMessage {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath)));
  const desc = registry.getMessage(typeName);
  if (!desc) throw new Error(`no message type ${typeName} in the contract`);
  return desc;
}

type Codec<T> = { toJSON(message: T): unknown };

/**
 * The JSON of a message of a generated package, e.g. `completeJson(fleet,
 * "ListAgentsResponse", res)`, with every field present.
 */
export function completeJson<P extends { protobufPackage: string }, K extends keyof P & string>(pkg: P, name: K, message: P[K] extends Codec<infer T> ? T : never): unknown {
  const codec = pkg[name] as Codec<typeof message>;
  return fill(messageDesc(`${pkg.protobufPackage}.${name}`), codec.toJSON(message));
}

function scalarZero(t: ScalarType): string | number | boolean {
  if (t === ScalarType.STRING || t === ScalarType.BYTES) return "";
  if (t === ScalarType.BOOL) return false;
  // ts-proto is generated with forceLong=number: 64-bit integers are JSON numbers too.
  return 0;
}

// Well-known types have their own JSON forms (a Timestamp is a string, a Struct any object).
const isWellKnown = (m: DescMessage) => m.typeName.startsWith("google.protobuf.");

function defaultFor(f: DescField): unknown {
  switch (f.fieldKind) {
    case "list":
      return [];
    case "map":
      return {};
    case "message":
      return null;
    case "enum":
      return f.presence === FeatureSet_FieldPresence.EXPLICIT ? null : (f.enum.values.find((v) => v.number === 0)?.name ?? 0);
    case "scalar":
      return f.presence === FeatureSet_FieldPresence.EXPLICIT ? null : scalarZero(f.scalar);
  }
}

function fill(desc: DescMessage, json: unknown): unknown {
  if (isWellKnown(desc) || json === null || typeof json !== "object" || Array.isArray(json)) return json;
  const obj = json as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // Fields in declaration order, so every object reads the same way.
  for (const f of desc.fields) {
    const key = f.jsonName;
    if (!(key in obj)) {
      if (f.oneof === undefined) out[key] = defaultFor(f);
      continue;
    }
    const v = obj[key];
    if (f.fieldKind === "message") out[key] = fill(f.message, v);
    else if (f.fieldKind === "list" && f.listKind === "message" && Array.isArray(v)) out[key] = v.map((x) => fill(f.message, x));
    else if (f.fieldKind === "map" && f.mapKind === "message" && v !== null && typeof v === "object") {
      out[key] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, fill(f.message, x)]));
    } else out[key] = v;
  }
  // Anything the descriptors do not know (none today) is kept, not dropped.
  for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v;
  return out;
}
