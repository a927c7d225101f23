// Runs an example as a user would (`node examples/NAME.js ...`) and lets a test wait for
// lines of its output while it runs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { live } from './live.js';

const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
/** Longest an example may run in a test. */
export const EXAMPLE_TIMEOUT_MS = 120_000;

/**
 * Starts `examples/<name>.js` with `args`, its API key in SPOTON_API_KEY as the README says.
 * `lines` and `errors` fill as it prints; `waitFor(pattern)` resolves with the first stdout
 * line matching; `exit` resolves with its exit code (after its output is read).
 */
export function runExample(name, args) {
  const child = spawn(process.execPath, [join(EXAMPLES_DIR, `${name}.js`), ...args], {
    env: { ...process.env, SPOTON_API_KEY: live.apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: EXAMPLE_TIMEOUT_MS,
  });
  const lines = [];
  const errors = [];
  const waiting = [];
  const closed = [once(child.stdout, 'end'), once(child.stderr, 'end')];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of waiting.filter((w) => w.pattern.test(line))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(line);
    }
  });
  createInterface({ input: child.stderr }).on('line', (line) => errors.push(line));
  return {
    lines,
    errors,
    waitFor: (pattern) => {
      const seen = lines.find((line) => pattern.test(line));
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiting.push({ pattern, resolve }));
    },
    exit: once(child, 'exit').then(async ([code]) => {
      await Promise.all(closed);
      return code;
    }),
    /** Output for an assertion message. */
    output: () => [...lines, ...errors.map((e) => `stderr: ${e}`)].join('\n'),
  };
}
