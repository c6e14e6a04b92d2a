import { readFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

interface IndexedFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly dependencies: readonly string[];
}

/**
 * The real FileDescriptorProtos of every contract (as `buf build` wrote them,
 * imports included), indexed by file name and by every symbol they define.
 * Serving these, rather than descriptors re-synthesised from a loaded
 * definition, keeps dependency lists intact, so clients resolve
 * google.protobuf.* and every other imported type.
 */
export class DescriptorIndex {
  private readonly files = new Map<string, IndexedFile>();
  private readonly fileOfSymbol = new Map<string, string>();

  static fromFile(path: string): DescriptorIndex {
    return new DescriptorIndex(readFileSync(path));
  }

  constructor(descriptorSet: Uint8Array) {
    const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
    for (const file of set.file) {
      this.files.set(file.name, { name: file.name, bytes: toBinary(FileDescriptorProtoSchema, file), dependencies: file.dependency });
      for (const symbol of symbolsOf(file)) this.fileOfSymbol.set(symbol, file.name);
    }
  }

  hasSymbol(symbol: string): boolean {
    return this.fileOfSymbol.has(symbol);
  }

  /** The file defining the symbol followed by its transitive dependencies. */
  fileContainingSymbol(symbol: string): Uint8Array[] | undefined {
    const name = this.fileOfSymbol.get(symbol);
    return name === undefined ? undefined : this.withDependencies(name);
  }

  fileByName(name: string): Uint8Array[] | undefined {
    return this.files.has(name) ? this.withDependencies(name) : undefined;
  }

  private withDependencies(root: string): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const f = this.files.get(name);
      if (!f) return;
      out.push(f.bytes);
      f.dependencies.forEach(visit);
    };
    visit(root);
    return out;
  }
}

function symbolsOf(file: FileDescriptorProto): string[] {
  const prefix = file.package ? `${file.package}.` : "";
  const out: string[] = [];
  const messages = (list: DescriptorProto[], scope: string) => {
    for (const m of list) {
      const full = `${scope}${m.name}`;
      out.push(full);
      m.field.forEach((f) => out.push(`${full}.${f.name}`));
      m.enumType.forEach((e) => out.push(`${full}.${e.name}`));
      m.extension.forEach((x) => out.push(`${full}.${x.name}`));
      messages(m.nestedType, `${full}.`);
    }
  };
  messages(file.messageType, prefix);
  for (const e of file.enumType) {
    out.push(`${prefix}${e.name}`);
    e.value.forEach((v) => out.push(`${prefix}${v.name}`));
  }
  for (const s of file.service) {
    out.push(`${prefix}${s.name}`);
    s.method.forEach((m) => out.push(`${prefix}${s.name}.${m.name}`));
  }
  file.extension.forEach((x) => out.push(`${prefix}${x.name}`));
  return out;
}
