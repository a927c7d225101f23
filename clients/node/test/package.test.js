// The package against the repository, no server needed: every service in proto/ has a name
// on a connection, and `npm pack` ships the .proto files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICES, findProtoDir, protoFiles } from '@spoton/client';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('every service in proto/spoton/v1 has a name on a connection', () => {
  const dir = findProtoDir();
  const declared = protoFiles(dir).flatMap((file) =>
    [...readFileSync(join(dir, file), 'utf8').matchAll(/^service (\w+)/gm)].map((m) => m[1]),
  );
  assert.deepEqual(Object.values(SERVICES).sort(), declared.sort(), 'name a new service in src/connect.ts (SERVICES, RawClients)');
});

test('npm pack ships the built client and the .proto files it loads', () => {
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=silent'], { cwd: PACKAGE_DIR, encoding: 'utf8' }),
  );
  const files = pack.files.map((f) => f.path);
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'loader-options.json', 'proto/spoton/v1/tasks.proto']) {
    assert.ok(files.includes(needed), `${needed} missing from ${files.join(', ')}`);
  }
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), files.join(', '));
  assert.deepEqual(readdirSync(PACKAGE_DIR).filter((f) => f === 'proto'), [], 'postpack left the copy of proto/');
});
