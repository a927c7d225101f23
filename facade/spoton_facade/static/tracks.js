// Tracking updates kept by global frame index until (and after) their frame is on screen.
//
// Updates usually arrive before the video reaches their frame; they are all kept, so a frame
// drawn later still has its boxes. Only when the buffer is very large are frames dropped, and
// then only those that every camera has already shown and that no trail still needs.

export const MAX_BUFFERED_FRAMES = 50000;

/** One colour per global id, the same in every camera view and on the map. */
export function colour(globalId, alpha = 1) {
  if (!globalId) return `hsl(0 0% 75% / ${alpha})`;
  // The golden angle spreads consecutive ids far apart on the hue circle.
  return `hsl(${(globalId * 137.508) % 360} 85% 52% / ${alpha})`;
}

export class TrackBuffer {
  constructor() {
    // global_frame_index -> Map(camera_id -> tracks)
    this.frames = new Map();
    this.refinedFrames = new Set(); // frames whose tracks came from tracks_refined
    this.received = 0;
    this.refined = 0; // tracks_refined events applied
    this.lastFrame = -1;
  }

  clear() {
    this.frames.clear();
    this.refinedFrames.clear();
    this.received = 0;
    this.refined = 0;
    this.lastFrame = -1;
  }

  /** A tracking_update payload. */
  add(update) {
    const perCamera = new Map(update.cameras.map((c) => [c.camera_id, c.tracks]));
    this.frames.set(update.global_frame_index, perCamera);
    this.received += 1;
    this.lastFrame = Math.max(this.lastFrame, update.global_frame_index);
  }

  /**
   * A tracks_refined payload: the refined updates replace what was buffered for frames
   * [start_global_frame_index, end_global_frame_index), so boxes, ids and trails redraw refined.
   */
  replace(refined) {
    for (let f = refined.start_global_frame_index; f < refined.end_global_frame_index; f++) {
      this.frames.delete(f);
      this.refinedFrames.add(f);
    }
    for (const update of refined.updates) {
      this.frames.set(update.global_frame_index, new Map(update.cameras.map((c) => [c.camera_id, c.tracks])));
      this.lastFrame = Math.max(this.lastFrame, update.global_frame_index);
    }
    this.refined += 1;
  }

  /** Whether ``frame``'s tracks are the refined ones. */
  isRefined(frame) {
    return this.refinedFrames.has(frame);
  }

  has(frame) {
    return this.frames.has(frame);
  }

  /** The tracks of ``camera`` at ``frame``, or null when that frame's update has not arrived. */
  tracks(frame, camera) {
    const perCamera = this.frames.get(frame);
    if (!perCamera) return null;
    return perCamera.get(camera) ?? [];
  }

  /**
   * Map positions per global id over frames (frame - span, frame]: Map(gid -> [[frame, x, y]…]),
   * oldest first. A person seen by several cameras at once is placed at the mean of their views.
   */
  positions(frame, span) {
    const byId = new Map();
    for (let f = frame - span + 1; f <= frame; f++) {
      const perCamera = this.frames.get(f);
      if (!perCamera) continue;
      const sums = new Map();
      for (const tracks of perCamera.values()) {
        for (const { global_id: gid, map_coords: xy } of tracks) {
          if (!gid || !xy) continue;
          const s = sums.get(gid) ?? [0, 0, 0];
          sums.set(gid, [s[0] + xy[0], s[1] + xy[1], s[2] + 1]);
        }
      }
      for (const [gid, [sx, sy, n]] of sums) {
        if (!byId.has(gid)) byId.set(gid, []);
        byId.get(gid).push([f, sx / n, sy / n]);
      }
    }
    return byId;
  }

  /** Drop frames before ``keepFrom`` while the buffer is over its bound. */
  trim(keepFrom) {
    if (this.frames.size <= MAX_BUFFERED_FRAMES) return;
    for (const frame of [...this.frames.keys()].sort((a, b) => a - b)) {
      if (this.frames.size <= MAX_BUFFERED_FRAMES || frame >= keepFrom) break;
      this.frames.delete(frame);
      this.refinedFrames.delete(frame);
    }
  }
}
