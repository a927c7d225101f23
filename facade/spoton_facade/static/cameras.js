// The camera wall: one view per camera, playing batch k's sub-videos together, with each
// frame's boxes and global ids drawn over the video on a canvas.
//
// Sync: the frame on screen is start_global_frame_index + ⌊t × fps⌋, where t is the media time
// of the frame the browser presented (requestVideoFrameCallback), or currentTime where that
// API is missing. Boxes come from the TrackBuffer, so updates that arrived early are drawn when
// their frame is shown.
//
// Holding: while the task is still processing a batch, playback pauses when the tracking
// updates for the next frames have not arrived yet (like a video buffering), and goes on once
// they have, so boxes are never missing because the video ran ahead of the service.
//
// Hand-over: a batch's videos are loaded (preload, HAVE_ENOUGH_DATA) before they play. When
// every video of batch k has ended, batch k is complete (batch_processing_complete) and batch
// k+1's videos are loaded, the views switch to batch k+1.
//
// Pausing: the page's controls hold the players (setPaused) when the task is paused, or when
// a finished task's playback is paused. A click on a box names its global id (onPick), and the
// focused person's box is drawn thick while the others fade (setFocus).

import { missingReason } from "./fov.js";
import { colour } from "./tracks.js";

// Frames of tracks that must be there ahead of the frame on screen to keep playing, and to
// resume after a hold.
const HOLD_LEAD_FRAMES = 1;
const RESUME_LEAD_FRAMES = 10;
// A video that has not reached HAVE_ENOUGH_DATA after this long starts at HAVE_FUTURE_DATA.
const LOAD_PATIENCE_MS = 5000;

export class CameraWall {
  /**
   * @param {HTMLElement} container where the camera views go
   * @param {HTMLTemplateElement} template one view: figure > .view > canvas, figcaption
   * @param {import("./tracks.js").TrackBuffer} buffer
   */
  constructor(container, template, buffer, onPick = () => {}) {
    this.container = container;
    this.template = template;
    this.buffer = buffer;
    this.onPick = onPick;
    this.focus = 0;
    this.reset();
  }

  reset() {
    // A previous task's videos stop loading and playing, in the DOM or not.
    for (const batch of this.batches?.values() ?? []) {
      for (const video of batch.videos.values()) {
        video.pause();
        video.removeAttribute("src");
        video.load();
      }
    }
    this.container.replaceChildren();
    // batch index -> { index, media: [MediaUrl…], videos: Map(camera -> video), complete, announcedAt }
    this.batches = new Map();
    // camera_id -> { figure, stage, canvas, caption, video, media, drawn }
    this.views = new Map();
    this.current = null;
    this.taskActive = true;
    this.waiting = false;
    this.userPaused = false;
    this.fallbackFps = new Map();
  }

  /** The environment's cameras: a view each (before any video), their fps for media entries
   * that do not carry one, and a hint on those whose people cannot be placed on the map. */
  setCameras(cameras) {
    for (const camera of cameras) {
      this.fallbackFps.set(camera.camera_id, camera.fps);
      const view = this._view(camera.camera_id);
      view.hint = missingReason(camera);
      view.caption.textContent = this._caption(camera.camera_id, view, "waiting for video");
    }
  }

  /** Highlight ``globalId`` (0: nobody). */
  setFocus(globalId) {
    this.focus = globalId;
  }

  /** A media_available payload: create and start loading that batch's videos. */
  addMedia({ sub_video_batch_index: index, media_urls: media }) {
    if (this.batches.has(index)) return; // a replay after a reconnect
    const videos = new Map();
    for (const entry of media) {
      const video = document.createElement("video");
      Object.assign(video, { muted: true, playsInline: true, preload: "auto", src: entry.url });
      video.dataset.camera = entry.camera_id;
      watchPresentedFrames(video);
      video.load();
      videos.set(entry.camera_id, video);
      this._view(entry.camera_id);
    }
    this.batches.set(index, { index, media, videos, complete: false, announcedAt: performance.now() });
  }

  /** A batch_processing_complete payload. */
  completeBatch(index) {
    const batch = this.batches.get(index);
    if (batch) batch.complete = true;
  }

  /** Whether the task is still running: holds only make sense while updates can still come. */
  setTaskActive(active) {
    this.taskActive = active;
  }

  /** Hold the players (the task is paused, or its playback) or let them go on. */
  setPaused(paused) {
    if (paused === this.userPaused) return;
    this.userPaused = paused;
    const batch = this.batches.get(this.current);
    if (!batch) return;
    for (const video of batch.videos.values()) {
      if (this.userPaused) video.pause();
      else if (!this.waiting && !video.ended) video.play().catch(() => {});
    }
    if (this.userPaused) this._stop(batch);
  }

  // Paused or held, every camera shows the frame the first one showed, or the last one before
  // it whose tracks are there (a video may have run a frame past them before it stopped):
  // each seeks to the middle of that frame, so its time maps to it however it is read.
  _stop(batch) {
    const master = this.views.get(batch.media[0]?.camera_id);
    if (master?.drawn.frame == null || !master.fps) return;
    const first = master.media.start_global_frame_index;
    let frame = master.drawn.frame;
    while (frame > first && !this.buffer.has(frame)) frame -= 1;
    if (!this.buffer.has(frame)) frame = master.drawn.frame;
    const time = (frame - first + 0.5) / master.fps;
    for (const video of batch.videos.values()) if (!video.ended && !video.error) video.currentTime = time;
  }

  /** Called every animation frame: hand-over, hold, sync and drawing. Returns the map frame. */
  tick() {
    this._handOver();
    const batch = this.batches.get(this.current);
    if (batch) {
      this._hold(batch);
      this._sync(batch);
    }
    for (const view of this.views.values()) this._draw(view);
    const master = batch && this.views.get(batch.media[0]?.camera_id);
    return master?.drawn.frame ?? null;
  }

  /** What is on screen, for window.spoton.state(). */
  snapshot() {
    const cameras = {};
    for (const [id, view] of this.views) {
      const video = view.video;
      cameras[id] = {
        batch: view.batch ?? null,
        src: video?.currentSrc || null,
        playing: Boolean(video && !video.paused && !video.ended && video.readyState >= 3),
        ended: Boolean(video?.ended),
        ready_state: video?.readyState ?? 0,
        current_time: video?.currentTime ?? 0,
        error: video?.error ? video.error.message || `media error ${video.error.code}` : null,
        ...view.drawn,
      };
    }
    return { batch: this.current, waiting_for_tracks: this.waiting, paused: this.userPaused, cameras };
  }

  _view(cameraId) {
    let view = this.views.get(cameraId);
    if (view) return view;
    const figure = this.template.content.firstElementChild.cloneNode(true);
    view = {
      figure,
      stage: figure.querySelector(".view"),
      canvas: figure.querySelector("canvas"),
      caption: figure.querySelector("figcaption"),
      video: null,
      media: null,
      batch: null,
      hint: null,
      // The boxes drawn, in canvas pixels, for clicks.
      hits: [],
      drawn: { frame: null, has_data: false, refined: false, boxes: 0, global_ids: [] },
    };
    view.caption.textContent = this._caption(cameraId, view, "waiting for video");
    figure.dataset.camera = cameraId;
    view.stage.addEventListener("click", (event) => {
      const box = view.canvas.getBoundingClientRect();
      const x = (event.clientX - box.left) * devicePixelRatio;
      const y = (event.clientY - box.top) * devicePixelRatio;
      // The innermost box under the click: the smallest that contains it.
      const hit = view.hits
        .filter((h) => x >= h.x && x <= h.x + h.w && y >= h.y && y <= h.y + h.h && h.gid)
        .sort((a, b) => a.w * a.h - b.w * b.h)[0];
      if (hit) this.onPick(hit.gid);
    });
    this.views.set(cameraId, view);
    this.container.append(figure);
    return view;
  }

  _caption(cameraId, view, what) {
    return view.hint ? `${cameraId} · ${what} · ${view.hint}` : `${cameraId} · ${what}`;
  }

  _ready(batch) {
    const patient = performance.now() - batch.announcedAt < LOAD_PATIENCE_MS;
    const enough = patient ? HTMLMediaElement.HAVE_ENOUGH_DATA : HTMLMediaElement.HAVE_FUTURE_DATA;
    return [...batch.videos.values()].every((v) => v.error || v.readyState >= enough);
  }

  _handOver() {
    let next;
    if (this.current === null) {
      next = this.batches.get(Math.min(...this.batches.keys()));
    } else {
      const batch = this.batches.get(this.current);
      const ended = [...batch.videos.values()].every((v) => v.ended || v.error);
      if (!ended || !(batch.complete || !this.taskActive)) return;
      next = this.batches.get(this.current + 1);
    }
    if (!next || !this._ready(next)) return;
    this.current = next.index;
    this.waiting = false;
    for (const entry of next.media) {
      const view = this._view(entry.camera_id);
      const video = next.videos.get(entry.camera_id);
      if (view.video) view.video.replaceWith(video);
      else view.stage.prepend(video);
      view.video = video;
      view.media = entry;
      view.batch = next.index;
      view.fps = entry.fps || this.fallbackFps.get(entry.camera_id) || 0;
      view.caption.textContent = this._caption(entry.camera_id, view, entry.sub_video_filename);
      if (video.videoWidth) view.stage.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
      if (!this.userPaused) video.play().catch(() => {}); // muted, so autoplay is allowed
    }
    // Batches long played are let go of; their videos' buffers with them.
    for (const index of this.batches.keys()) {
      if (index < this.current - 1) this.batches.delete(index);
    }
  }

  _hold(batch) {
    const master = this.views.get(batch.media[0]?.camera_id);
    if (!master?.media || master.drawn.frame === null) return;
    const last = master.media.start_global_frame_index + master.media.num_frames_in_sub_video - 1;
    const canHold = this.taskActive && !batch.complete;
    const has = (lead) => this.buffer.has(Math.min(master.drawn.frame + lead, last));
    if (!this.waiting && canHold && !has(HOLD_LEAD_FRAMES)) {
      this.waiting = true;
      for (const video of batch.videos.values()) video.pause();
      if (!this.buffer.has(master.drawn.frame)) this._stop(batch);
    } else if (this.waiting && (!canHold || has(RESUME_LEAD_FRAMES))) {
      this.waiting = false;
      if (!this.userPaused) for (const video of batch.videos.values()) if (!video.ended) video.play().catch(() => {});
    }
  }

  _sync(batch) {
    const [first, ...others] = batch.videos.values();
    const fps = this.views.get(batch.media[0]?.camera_id)?.fps || 10;
    if (!first || first.seeking) return;
    for (const video of others) {
      if (video.ended || video.seeking || video.error) continue;
      if (Math.abs(video.currentTime - first.currentTime) > 1.5 / fps) video.currentTime = first.currentTime;
    }
  }

  _draw(view) {
    const { video, canvas, media } = view;
    const width = Math.round(view.stage.clientWidth * devicePixelRatio);
    const height = Math.round(view.stage.clientHeight * devicePixelRatio);
    if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    view.hits = [];
    if (!video || !media || !view.fps || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) {
      view.drawn = { frame: null, has_data: false, refined: false, boxes: 0, global_ids: [] };
      return;
    }
    if (!view.stage.style.aspectRatio) view.stage.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
    const time = video.presentedTime ?? video.currentTime;
    // The small epsilon keeps exact frame times (0.3 s × 10) from flooring one frame early.
    const offset = Math.max(0, Math.min(Math.floor(time * view.fps + 1e-3), media.num_frames_in_sub_video - 1));
    const frame = media.start_global_frame_index + offset;
    const tracks = this.buffer.tracks(frame, media.camera_id);
    const scale = width / video.videoWidth;
    const font = Math.max(11, Math.round(13 * devicePixelRatio));
    ctx.font = `bold ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    const ids = [];
    for (const { box, global_id: gid, track_id: tid } of tracks ?? []) {
      const [x, y, w, h] = [box.x1 * scale, box.y1 * scale, (box.x2 - box.x1) * scale, (box.y2 - box.y1) * scale];
      const focused = this.focus !== 0 && gid === this.focus;
      ctx.globalAlpha = this.focus && !focused ? 0.35 : 1;
      ctx.lineWidth = (focused ? 5 : 2) * devicePixelRatio;
      ctx.strokeStyle = colour(gid);
      ctx.strokeRect(x, y, w, h);
      view.hits.push({ gid, x, y, w, h });
      const label = gid ? `#${gid}` : `t${tid}`;
      const labelWidth = ctx.measureText(label).width + 6;
      const top = y - font - 2 >= 0 ? y - font - 2 : y;
      ctx.fillStyle = colour(gid, 0.85);
      ctx.fillRect(x - ctx.lineWidth / 2, top, labelWidth, font + 2);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x + 3, top + font + 1);
      ctx.globalAlpha = 1;
      ids.push(gid);
    }
    view.drawn = {
      frame,
      has_data: tracks !== null,
      refined: this.buffer.isRefined(frame),
      boxes: ids.length,
      global_ids: ids,
      // Where each box was drawn, [x1, y1, x2, y2] in the video's pixels (what moves over time).
      box_positions: (tracks ?? []).map(({ box }) => [box.x1, box.y1, box.x2, box.y2]),
    };
  }
}

// Keeps video.presentedTime at the media time of the frame on screen.
function watchPresentedFrames(video) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const onFrame = (_now, metadata) => {
    video.presentedTime = metadata.mediaTime;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  // A seek presents a new frame, which the callback reports; until then currentTime is right.
  video.addEventListener("seeking", () => {
    video.presentedTime = undefined;
  });
}
