// `npm pack` (prepack): copies the repository's proto/spoton into the package, so that a
// published tarball carries the .proto files the client loads at run time; postpack
// (--remove) deletes the copy again, so the working tree keeps reading proto/ itself.
import { cpSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const copy = join(PACKAGE_DIR, 'proto');

rmSync(copy, { recursive: true, force: true });
if (process.argv[2] !== '--remove') {
  cpSync(resolve(PACKAGE_DIR, '..', '..', 'proto', 'spoton'), join(copy, 'spoton'), {
    recursive: true,
    filter: (source) => statSync(source).isDirectory() || source.endsWith('.proto'),
  });
}
