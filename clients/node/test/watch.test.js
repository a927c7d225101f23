// watchTask against the real server: every event in order to the end, resumption by
// sequence number after a stream given up, and after a connection that drops.
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@spoton/client';
import { startProxy } from './support/proxy.js';
import {
  FINAL_STATES,
  adminConnection,
  allEvents,
  live,
  oneTo,
  pause,
  skipWithoutServer,
  startTask,
} from './support/live.js';

const options = { skip: skipWithoutServer };

/** What identifies an event's content, to compare two watches of one task. */
const summary = (event) => `${event.sequence} ${event.payload} ${JSON.stringify(event[event.payload])}`;

test('watchTask gets every event in order, to the final state', options, async () => {
  const spoton = adminConnection();
  try {
    const taskId = await startTask(spoton);
    const events = await allEvents(spoton, taskId);
    assert.deepEqual(events.map((e) => e.sequence), oneTo(events.length));
    assert.ok(events.every((e) => e.taskId === taskId));
    const last = events.at(-1);
    assert.equal(last.payload, 'statusUpdate');
    assert.equal(last.statusUpdate.state, 'TASK_STATE_COMPLETED');
    assert.ok(events.slice(0, -1).every((e) => !FINAL_STATES.has(e.statusUpdate?.state)));
    assert.ok(events.some((e) => e.payload === 'trackingUpdate'));
    const task = await spoton.tasks.getTask({ taskId });
    assert.equal(task.lastSequence, events.length);
  } finally {
    spoton.close();
  }
});

test('a watch left mid-way resumes with afterSequence: no gap, no duplicate', options, async () => {
  const spoton = adminConnection();
  try {
    const taskId = await startTask(spoton);
    const whole = (await allEvents(spoton, taskId)).map(summary);
    const cut = Math.floor(whole.length / 2);
    const first = [];
    for await (const event of spoton.watchTask(taskId)) {
      first.push(summary(event));
      if (first.length === cut) break; // gives the stream up: the call is cancelled
    }
    const rest = [];
    for await (const event of spoton.watchTask(taskId, { afterSequence: cut })) rest.push(summary(event));
    assert.deepEqual([...first, ...rest], whole);
  } finally {
    spoton.close();
  }
});

test('a dropped connection is resumed after the last sequence seen', options, async () => {
  const spoton = adminConnection();
  const proxy = await startProxy(live.target);
  const through = adminConnection({ target: proxy.target });
  try {
    // Paused, the task has (next to) nothing to send: the connection drops mid-stream.
    const taskId = await startTask(spoton);
    await pause(spoton, taskId);
    const retries = [];
    const seen = [];
    const events = through.watchTask(taskId, {
      // `after` must be the last sequence delivered: the one before the next to come.
      onRetry: (error, retry, after) => retries.push({ code: error.code, retry, after, last: seen.at(-1)?.sequence }),
    });
    let dropped = false;
    for await (const event of events) {
      seen.push(event);
      if (event.statusUpdate?.state === 'TASK_STATE_PAUSED' && !dropped) {
        dropped = proxy.drop() > 0;
        assert.ok(dropped);
        // The task goes on while the watcher is cut off: those events come after the reconnect.
        await spoton.tasks.controlTask({ taskId, action: 'TASK_ACTION_RESUME' });
      }
    }
    assert.equal(retries.length, 1, JSON.stringify(retries));
    const [{ code, retry, after, last }] = retries;
    assert.deepEqual({ code, retry, after }, { code: status.UNAVAILABLE, retry: 1, after: last });
    assert.deepEqual(seen.map((e) => e.sequence), oneTo(seen.length));
    assert.equal(seen.at(-1).statusUpdate?.state, 'TASK_STATE_COMPLETED');
  } finally {
    spoton.close();
    through.close();
    await proxy.close();
  }
});

test('other errors are not retried', options, async () => {
  const spoton = adminConnection();
  try {
    let retried = 0;
    await assert.rejects(async () => {
      for await (const _ of spoton.watchTask(randomUUID(), { onRetry: () => (retried += 1) }));
    }, { code: status.NOT_FOUND });
    assert.equal(retried, 0);
  } finally {
    spoton.close();
  }
});
