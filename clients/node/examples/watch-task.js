#!/usr/bin/env node
// Follows a processing task with TaskService/WatchTask, one line per event, to its end.
// A dropped connection or a restarting server does not lose or repeat an event: the
// client reopens the stream after the last sequence number it printed (watchTask's
// resumption), and --after-sequence resumes a watch that an earlier run left off.
//
//   SPOTON_API_KEY=spk_... node examples/watch-task.js --target 127.0.0.1:50051 --environment my-site
//   SPOTON_API_KEY=spk_... node examples/watch-task.js --task 3f2a... --after-sequence 120
import { parseArgs } from 'node:util';
import { connect } from '@spoton/client';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: '127.0.0.1:50051' },
    task: { type: 'string' },
    environment: { type: 'string' },
    'after-sequence': { type: 'string', default: '0' },
  },
});
if (!values.task === !values.environment) {
  console.error('usage: watch-task.js (--task ID [--after-sequence N] | --environment ID) [--target host:port]');
  process.exit(2);
}

/** One line about an event's payload (the oneof member that is set). */
function describe(event) {
  switch (event.payload) {
    case 'statusUpdate': {
      const { state, progress, step, error } = event.statusUpdate;
      return `${state} ${Math.round(progress * 100)}% ${step}${error ? ` error: ${error}` : ''}`;
    }
    case 'trackingUpdate': {
      const cameras = event.trackingUpdate.cameras;
      const people = cameras.reduce((n, camera) => n + camera.tracks.length, 0);
      return `frame ${event.trackingUpdate.globalFrameIndex}: ${people} tracks in ${cameras.length} cameras`;
    }
    case 'tracksRefined': {
      const { startGlobalFrameIndex, endGlobalFrameIndex } = event.tracksRefined;
      return `refined frames ${startGlobalFrameIndex}..${endGlobalFrameIndex - 1}`;
    }
    case 'mediaAvailable':
      return `batch ${event.mediaAvailable.subVideoBatchIndex} media: ${event.mediaAvailable.mediaUrls.length} videos`;
    case 'batchProcessingComplete':
      return `batch ${event.batchProcessingComplete.subVideoBatchIndex} done`;
    case 'zoneEvent':
      return `person ${event.zoneEvent.globalId} ${event.zoneEvent.kind} zone ${event.zoneEvent.zoneName}`;
    case 'focusUpdate':
      return `focus on person ${event.focusUpdate.globalId}`;
    default:
      return '(unknown event)';
  }
}

const spoton = connect({ target: values.target });
try {
  let taskId = values.task;
  if (!taskId) {
    const { task } = await spoton.tasks.startTask({ environmentId: values.environment });
    taskId = task.taskId;
    console.log(`started task ${taskId}`);
  }
  let state = 'TASK_STATE_UNSPECIFIED';
  let last = Number(values['after-sequence']);
  const events = spoton.watchTask(taskId, {
    afterSequence: last,
    onRetry: (error, retry, after) =>
      console.error(`stream lost (${error.code} ${error.details}); resuming after #${after} (retry ${retry})`),
  });
  for await (const event of events) {
    if (event.payload === 'statusUpdate') state = event.statusUpdate.state;
    last = event.sequence;
    console.log(`#${event.sequence} ${event.payload} ${describe(event)}`);
  }
  console.log(`task ${taskId} ended ${state} at #${last}`);
} finally {
  spoton.close();
}
