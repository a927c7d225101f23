#!/usr/bin/env node
// Streams a video's frames through InferenceService/StreamFrames and prints the tracks of
// each frame: what a Node service in front of a camera does.
//
// Node cannot decode video, so the frames come as a folder of JPEG files, sent in name
// order; make one from any video with FFmpeg:
//
//   ffmpeg -i video.mp4 -q:v 3 frames/%06d.jpg
//   SPOTON_API_KEY=spk_... node examples/stream-frames.js --target 127.0.0.1:50051 \
//     --environment my-site --camera c01 --fps 25 frames/
//
// The camera must belong to the environment (its catalogue entry gives the homography for
// map positions). Frames go in lock-step, one in flight: the server drops the oldest waiting
// frame when a client sends faster than it keeps up (counted in `droppedFrames`), which a
// live camera would rather have than a growing delay, but a recording should not.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@spoton/client';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string', default: '127.0.0.1:50051' },
    environment: { type: 'string' },
    camera: { type: 'string', default: 'c01' },
    fps: { type: 'string', default: '25' },
  },
});
const [framesDir] = positionals;
if (!framesDir || !values.environment) {
  console.error('usage: stream-frames.js --environment ID [--camera c01] [--fps 25] [--target host:port] FRAMES_DIR');
  process.exit(2);
}
const fps = Number(values.fps);
const names = (await readdir(framesDir)).filter((name) => /\.jpe?g$/i.test(name)).sort();
if (names.length === 0) {
  console.error(`no .jpg files in ${framesDir}`);
  process.exit(2);
}

const spoton = connect({ target: values.target });
const stream = spoton.inference.streamFrames();
const replies = stream[Symbol.asyncIterator]();
const start = Date.now() / 1000;
let framesWithTracks = 0;
const localIds = new Set();
try {
  for (const [index, name] of names.entries()) {
    // Capture times 1/fps apart on one clock: the tracker's frame index follows them.
    const t = start + index / fps;
    await stream.send({
      environmentId: values.environment,
      cameraId: values.camera,
      frameId: index,
      timestamp: { seconds: Math.floor(t), nanos: Math.round((t % 1) * 1e9) },
      encoded: await readFile(join(framesDir, name)),
    });
    const { value: reply, done } = await replies.next();
    if (done) throw new Error('the server ended the stream early');
    const tracks = reply.tracks.map((track) => {
      const { x1, y1, x2, y2 } = track.box ?? { x1: 0, y1: 0, x2: 0, y2: 0 };
      localIds.add(track.trackId);
      return `id ${track.trackId} global ${track.globalId} box [${[x1, y1, x2, y2].map(Math.round).join(', ')}]`;
    });
    if (tracks.length > 0) framesWithTracks += 1;
    console.log(`frame ${reply.frameId} (${name}): ${tracks.length} tracks${tracks.length ? `: ${tracks.join('; ')}` : ''}`);
  }
  stream.end(); // half-close: the stream ends with OK once every frame is answered
  if (!(await replies.next()).done) throw new Error('a reply past the last frame');
  console.log(`${names.length} frames, ${framesWithTracks} with tracks, ${localIds.size} people (local ids)`);
} finally {
  spoton.close();
}
