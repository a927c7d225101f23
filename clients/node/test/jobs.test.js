// A client stream (JobService/UploadJob) and watchJob against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { status } from '@spoton/client';
import { adminConnection, live, skipWithoutServer } from './support/live.js';

const options = { skip: skipWithoutServer || (!live.video && 'SPOTON_TEST_VIDEO is not set') };
/** The chunk size JobService recommends. */
const CHUNK_BYTES = 1024 * 1024;

/** UploadJob's requests: the metadata, then the file in chunks, read as they are sent. */
async function* upload(path) {
  yield { metadata: { filename: basename(path), sizeBytes: statSync(path).size, idempotencyKey: randomUUID() } };
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) yield { chunk };
}

test('uploadJob streams a video in; watchJob follows the job to its final state', options, async () => {
  const spoton = adminConnection();
  try {
    const job = await spoton.jobs.uploadJob(upload(live.video));
    assert.ok(job.jobId);
    const seen = [];
    for await (const update of spoton.watchJob(job.jobId)) seen.push(update);
    const revisions = seen.map((j) => j.revision);
    assert.deepEqual(revisions, [...revisions].sort((a, b) => a - b));
    assert.equal(new Set(revisions).size, revisions.length);
    assert.equal(seen.at(-1).state, 'JOB_STATE_COMPLETED', JSON.stringify(seen.at(-1)));
    await spoton.jobs.deleteJob({ jobId: job.jobId });
  } finally {
    spoton.close();
  }
});

test('a refused upload rejects with the server\'s status', options, async () => {
  const spoton = adminConnection();
  try {
    const notAVideo = [
      { metadata: { filename: 'notes.mp4', idempotencyKey: randomUUID() } },
      { chunk: Buffer.from('this is not a video') },
    ];
    await assert.rejects(spoton.jobs.uploadJob(notAVideo), { code: status.INVALID_ARGUMENT });
  } finally {
    spoton.close();
  }
});
