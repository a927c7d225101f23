// The examples, run as a user runs them (child processes) against the real server, so that
// they cannot rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy } from './support/proxy.js';
import { runExample } from './support/child.js';
import { adminConnection, live, oneTo, pause, skipWithoutServer, startTask } from './support/live.js';

const options = { skip: skipWithoutServer };

/** The sequence numbers of the `#<sequence> ...` lines the watch-task example prints. */
const sequences = (lines) => lines.filter((l) => l.startsWith('#')).map((l) => Number(l.slice(1).split(' ')[0]));

test('health prints the status of every component', options, async () => {
  const run = runExample('health', ['--target', live.target]);
  assert.equal(await run.exit, 0, run.output());
  assert.match(run.lines[0], /^status: (healthy|degraded|starting)$/);
  assert.ok(run.lines.some((l) => l.startsWith('  triton: ')), run.output());
});

test('stream-frames streams real footage and prints the tracks of every frame', options, async () => {
  const run = runExample('stream-frames', [
    '--target',
    live.target,
    '--environment',
    live.streamEnvironment,
    '--camera',
    live.streamCamera,
    '--fps',
    live.streamFps,
    live.framesDir,
  ]);
  assert.equal(await run.exit, 0, run.output());
  const frames = run.lines.filter((l) => l.startsWith('frame '));
  const last = run.lines.at(-1);
  const [, total, withTracks, people] = /^(\d+) frames, (\d+) with tracks, (\d+) people/.exec(last) ?? [];
  assert.equal(frames.length, Number(total), run.output());
  assert.deepEqual(frames.map((l) => Number(l.split(' ')[1])), [...Array(frames.length).keys()]);
  // TUD-Campus: several people in view from the first frames on.
  assert.ok(Number(withTracks) >= frames.length / 2, run.output());
  assert.ok(Number(people) >= 2, run.output());
  assert.match(run.output(), /id \d+ global \d+ box \[\d+, \d+, \d+, \d+\]/);
});

test('watch-task starts a task and follows it to its end', options, async () => {
  const run = runExample('watch-task', ['--target', live.target, '--environment', live.exampleEnvironment]);
  assert.equal(await run.exit, 0, run.output());
  assert.match(run.lines[0], /^started task [0-9a-f-]{36}$/);
  const seen = sequences(run.lines);
  assert.deepEqual(seen, oneTo(seen.length), run.output());
  assert.match(run.lines.at(-1), new RegExp(`ended TASK_STATE_COMPLETED at #${seen.length}$`));
});

test('watch-task resumes by sequence number after the connection drops, and from --after-sequence', options, async () => {
  const spoton = adminConnection();
  const proxy = await startProxy(live.target);
  try {
    const taskId = await startTask(spoton);
    await pause(spoton, taskId);
    const run = runExample('watch-task', ['--target', proxy.target, '--task', taskId]);
    await run.waitFor(/ TASK_STATE_PAUSED /);
    assert.ok(proxy.drop() > 0);
    await spoton.tasks.controlTask({ taskId, action: 'TASK_ACTION_RESUME' });
    assert.equal(await run.exit, 0, run.output());
    const seen = sequences(run.lines);
    assert.deepEqual(seen, oneTo(seen.length), run.output());
    assert.match(run.lines.at(-1), /ended TASK_STATE_COMPLETED/);
    assert.equal(run.errors.length, 1, run.output());
    assert.match(run.errors[0], /^stream lost \(14 .*\); resuming after #\d+ \(retry 1\)$/);

    const cut = Math.floor(seen.length / 2);
    const rest = runExample('watch-task', ['--target', live.target, '--task', taskId, '--after-sequence', String(cut)]);
    assert.equal(await rest.exit, 0, rest.output());
    assert.deepEqual(sequences(rest.lines), oneTo(seen.length).slice(cut));
  } finally {
    spoton.close();
    await proxy.close();
  }
});
