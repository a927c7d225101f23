// Generates src/generated/ (TypeScript types for spoton.v1) from the repository's proto/
// with proto-loader-gen-types, using the same loader options the client loads the .proto
// files with at run time (loader-options.json), so the types describe the objects it returns.
//
//   node scripts/generate-types.mjs            writes src/generated/
//   node scripts/generate-types.mjs OUT_DIR    writes OUT_DIR
//
// Every build runs it first (`npm run build`, `npm ci`'s prepare, `npm test`), so the types
// are never older than proto/ and are not committed (the way proto/python is not).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_PROTO_DIR = resolve(PACKAGE_DIR, '..', '..', 'proto');
const GENERATOR = join(PACKAGE_DIR, 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js');

const outDir = resolve(process.argv[2] ?? join(PACKAGE_DIR, 'src', 'generated'));
const options = JSON.parse(readFileSync(join(PACKAGE_DIR, 'loader-options.json'), 'utf8'));
const flags = [
  ...(options.keepCase ? ['--keepCase'] : []),
  `--longs=${options.longs}`,
  `--enums=${options.enums}`,
  ...(options.defaults ? ['--defaults'] : []),
  ...(options.oneofs ? ['--oneofs'] : []),
];
// Sorted, relative to proto/: the output (its "Original file" comments too) is the same on
// every machine and from every working directory.
const files = readdirSync(join(REPO_PROTO_DIR, 'spoton', 'v1'))
  .filter((name) => name.endsWith('.proto'))
  .sort()
  .map((name) => `spoton/v1/${name}`);

rmSync(outDir, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    GENERATOR,
    ...flags,
    '--includeComments',
    '--grpcLib=@grpc/grpc-js',
    '--importFileExtension=.js',
    '-I',
    '.',
    '-O',
    outDir,
    ...files,
  ],
  { cwd: REPO_PROTO_DIR, stdio: 'inherit' },
);
