// What the live tests run against, from the environment (tests/clients/test_node_client.py
// sets it up on the real embedded stack): without SPOTON_TEST_TARGET they are skipped.
import { connect, status } from '@spoton/client';

export const live = {
  target: process.env.SPOTON_TEST_TARGET ?? '',
  apiKey: process.env.SPOTON_TEST_API_KEY ?? '',
  /** An environment of short videos without people, for tasks (shared: tasks run concurrently). */
  taskEnvironment: process.env.SPOTON_TEST_TASK_ENVIRONMENT ?? '',
  /** An environment only the watch-task example starts a task on (it does not allow concurrent ones). */
  exampleEnvironment: process.env.SPOTON_TEST_EXAMPLE_ENVIRONMENT ?? '',
  /** An environment with a camera of real footage, and that footage as JPEG frames. */
  streamEnvironment: process.env.SPOTON_TEST_STREAM_ENVIRONMENT ?? '',
  streamCamera: process.env.SPOTON_TEST_STREAM_CAMERA ?? 'c01',
  streamFps: process.env.SPOTON_TEST_STREAM_FPS ?? '25',
  framesDir: process.env.SPOTON_TEST_FRAMES_DIR ?? '',
  /** A short video file, for uploads. */
  video: process.env.SPOTON_TEST_VIDEO ?? '',
};

/** The `skip` option of a live test: a reason when there is no server to test against. */
export const skipWithoutServer = live.target ? false : 'SPOTON_TEST_TARGET is not set (tests/clients/test_node_client.py sets it)';

/** A connection with the test stack's admin key. */
export function adminConnection(options = {}) {
  return connect({ target: live.target, apiKey: live.apiKey, ...options });
}

/** Starts a task on the task environment (next to other tests' tasks) and returns its id. */
export async function startTask(spoton) {
  const { task } = await spoton.tasks.startTask({ environmentId: live.taskEnvironment, allowConcurrent: true });
  return task.taskId;
}

/** The terminal task states. */
export const FINAL_STATES = new Set(['TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELLED']);

/** Pauses a task; a task that ended before the pause reached it cannot be, and says so. */
export async function pause(spoton, taskId) {
  const { task } = await spoton.tasks.controlTask({ taskId, action: 'TASK_ACTION_PAUSE' });
  return task;
}

/** Every event of a task, watched from the start to its end. */
export async function allEvents(spoton, taskId) {
  const events = [];
  for await (const event of spoton.watchTask(taskId)) events.push(event);
  return events;
}

/** The sequence numbers 1..n, for comparing a watch against "every event, in order". */
export function oneTo(n) {
  return Array.from({ length: n }, (_, i) => i + 1);
}

export { status };
