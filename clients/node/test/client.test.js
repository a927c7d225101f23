// Calls, credentials and deadlines against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, connect, status } from '@spoton/client';
import { adminConnection, allEvents, live, pause, skipWithoutServer, startTask } from './support/live.js';

const options = { skip: skipWithoutServer };

test('GetHealth answers with the status of every component', options, async () => {
  const spoton = adminConnection();
  try {
    const health = await spoton.system.getHealth({});
    assert.ok(['healthy', 'degraded', 'starting'].includes(health.status), health.status);
    assert.ok(health.components.some((c) => c.name === 'triton'), JSON.stringify(health.components));
    // The raw grpc-js client is on the same channel, with the same credential.
    const raw = await new Promise((resolve, reject) =>
      spoton.raw.system.getHealth({}, (error, reply) => (error ? reject(error) : resolve(reply))),
    );
    assert.equal(raw.status, health.status);
  } finally {
    spoton.close();
  }
});

test('a wrong API key, or none, is UNAUTHENTICATED', options, async () => {
  const wrong = connect({ target: live.target, apiKey: 'spk_0000_not-a-key' });
  const none = connect({ target: live.target, apiKey: '' });
  try {
    await assert.rejects(wrong.tasks.listTasks({}), { code: status.UNAUTHENTICATED });
    await assert.rejects(none.tasks.listTasks({}), { code: status.UNAUTHENTICATED });
    // Streams carry the credential too.
    await assert.rejects(async () => {
      for await (const _ of wrong.watchTask('no-such-task')) assert.fail('an event without a credential');
    }, { code: status.UNAUTHENTICATED });
  } finally {
    wrong.close();
    none.close();
  }
});

test('a call may carry its own credential instead of the connection\'s', options, async () => {
  const wrong = connect({ target: live.target, apiKey: 'spk_0000_not-a-key' });
  try {
    const metadata = new Metadata();
    metadata.set('x-api-key', live.apiKey);
    const reply = await wrong.tasks.listTasks({ pageSize: 1 }, { metadata });
    assert.ok(Array.isArray(reply.tasks));
  } finally {
    wrong.close();
  }
});

test('deadlines: a tiny one is DEADLINE_EXCEEDED, unary calls get the default, streams do not', options, async () => {
  const spoton = adminConnection();
  const hasty = adminConnection({ defaultDeadlineMs: 1 });
  try {
    await assert.rejects(spoton.system.getHealth({}, { deadlineMs: 1 }), { code: status.DEADLINE_EXCEEDED });
    await assert.rejects(hasty.system.getHealth({}), { code: status.DEADLINE_EXCEEDED });
    // A per-call deadline wins over the connection's default.
    assert.ok((await hasty.system.getHealth({}, { deadlineMs: 10_000 })).status);

    // A paused task's watch waits for events that do not come: its deadline ends it.
    const taskId = await startTask(spoton);
    const paused = await pause(spoton, taskId);
    assert.equal(paused.state, 'TASK_STATE_PAUSED');
    const started = Date.now();
    await assert.rejects(async () => {
      for await (const _ of spoton.tasks.watchTask({ taskId }, { deadlineMs: 800 }));
    }, { code: status.DEADLINE_EXCEEDED });
    const waited = Date.now() - started;
    assert.ok(waited >= 700 && waited < 10_000, `the watch ended after ${waited} ms`);

    // ... while the 1 ms default of `hasty` does not apply to the (resumed) stream of watchTask.
    await spoton.tasks.controlTask({ taskId, action: 'TASK_ACTION_RESUME' });
    const events = await allEvents(hasty, taskId);
    assert.equal(events.at(-1).statusUpdate?.state, 'TASK_STATE_COMPLETED');
  } finally {
    spoton.close();
    hasty.close();
  }
});

test('an AbortSignal cancels a call', options, async () => {
  const spoton = adminConnection();
  try {
    const taskId = await startTask(spoton);
    await pause(spoton, taskId);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(async () => {
      for await (const _ of spoton.tasks.watchTask({ taskId }, { signal: controller.signal }));
    }, { code: status.CANCELLED });
    await spoton.tasks.controlTask({ taskId, action: 'TASK_ACTION_CANCEL' });
  } finally {
    spoton.close();
  }
});
