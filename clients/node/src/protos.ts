/**
 * Finding and loading SpotOn's .proto files at run time.
 *
 * The client is built from `proto/spoton/v1/*.proto` by `@grpc/proto-loader` when it
 * connects, so a new RPC needs no code generation to be callable; the types under
 * `src/generated/` (generated from the same files by every build) are for the compiler
 * only, and use the same options, kept in `loader-options.json`.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's own directory (this file is `<package>/dist/protos.js` once built). */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the .proto files are looked for, in order: a copy inside the package (what
 * `npm pack` ships, see the `prepack` script), then the repository's `proto/` two levels up.
 */
export const PROTO_DIR_CANDIDATES: readonly string[] = [
  join(PACKAGE_DIR, 'proto'),
  resolve(PACKAGE_DIR, '..', '..', 'proto'),
];

/** The protobuf package every SpotOn service lives in. */
export const PROTO_PACKAGE = 'spoton.v1';

const PACKAGE_PATH = PROTO_PACKAGE.split('.');

interface LoaderOptionsFile {
  keepCase: boolean;
  longs: 'Number' | 'String';
  enums: 'String';
  defaults: boolean;
  oneofs: boolean;
}

/**
 * proto-loader's options, read from `loader-options.json` (shared with the type generator):
 * camelCase fields, 64-bit integers as JavaScript numbers (sequence numbers, frame indices and
 * sizes stay far below 2^53), enums as their names, defaults filled in, and a virtual field
 * naming the member of each oneof that is set (`event.payload === 'statusUpdate'`).
 */
export function loaderOptions(): protoLoader.Options {
  const file = JSON.parse(readFileSync(join(PACKAGE_DIR, 'loader-options.json'), 'utf8')) as LoaderOptionsFile;
  return {
    keepCase: file.keepCase,
    longs: file.longs === 'Number' ? Number : String,
    enums: String,
    defaults: file.defaults,
    oneofs: file.oneofs,
  };
}

/** The directory holding `spoton/v1/*.proto`: `explicit` when given, else the first candidate. */
export function findProtoDir(explicit?: string): string {
  const candidates = explicit ? [explicit] : PROTO_DIR_CANDIDATES;
  const found = candidates.find((dir) => existsSync(join(dir, ...PACKAGE_PATH)));
  if (!found) {
    throw new Error(`SpotOn .proto files not found in ${candidates.join(' or ')}`);
  }
  return found;
}

/** The .proto files of spoton.v1 under `protoDir`, relative to it, sorted. */
export function protoFiles(protoDir: string): string[] {
  return readdirSync(join(protoDir, ...PACKAGE_PATH))
    .filter((name) => name.endsWith('.proto'))
    .sort()
    .map((name) => [...PACKAGE_PATH, name].join('/'));
}

const loaded = new Map<string, grpc.GrpcObject>();

/** The `spoton.v1` namespace (service constructors and message types), loaded once per directory. */
export function loadSpotOnPackage(protoDir: string): grpc.GrpcObject {
  let namespace = loaded.get(protoDir);
  if (!namespace) {
    const definition = protoLoader.loadSync(protoFiles(protoDir), { ...loaderOptions(), includeDirs: [protoDir] });
    let node: grpc.GrpcObject = grpc.loadPackageDefinition(definition);
    for (const part of PACKAGE_PATH) {
      node = node[part] as grpc.GrpcObject;
    }
    namespace = node;
    loaded.set(protoDir, namespace);
  }
  return namespace;
}
