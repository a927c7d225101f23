// The floor plan: the environment's map image when the API gives one (scaled by
// metres_per_pixel), else a rectangle in metres that covers every camera's field of view and
// every position seen so far. Each camera's field of view (fov.js) is drawn as soon as the
// environment is chosen, before any task. Each global id is a dot with a short trail, in the
// same colour as its boxes in the camera views; the focused person's dot is ringed, and a
// click on a dot names its global id (dotAt).

import { fieldOfView, missingReason } from "./fov.js";
import { colour } from "./tracks.js";

export const TRAIL_SECONDS = 2;
const MARGIN_M = 0.5;
// How near (CSS pixels) a click must be to a dot to pick it.
const PICK_RADIUS_PX = 14;

export class FloorMap {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {import("./tracks.js").TrackBuffer} buffer
   */
  constructor(canvas, buffer) {
    this.canvas = canvas;
    this.buffer = buffer;
    this.focus = 0;
    this.dots = [];
    this.setEnvironment(null);
  }

  setEnvironment(environment) {
    this.environment = environment;
    this.image = null;
    this.imageExtent = null;
    this.fps = environment?.cameras?.[0]?.fps || 10;
    // Where each camera sees the floor; the cameras that cannot be placed, with the reason.
    const cameras = environment?.cameras ?? [];
    this.footprints = cameras
      .map((camera) => ({ id: camera.camera_id, hull: convexHull(fieldOfView(camera)) }))
      .filter((footprint) => footprint.hull.length >= 3);
    this.unplaced = cameras
      .map((camera) => ({ camera_id: camera.camera_id, reason: missingReason(camera) }))
      .filter((camera) => camera.reason);
    const points = this.footprints.flatMap((footprint) => footprint.hull);
    this.extent = points.length ? bounds(points) : { x0: 0, y0: 0, x1: 10, y1: 10 };
    const map = environment?.map;
    if (map?.image_url && map.metres_per_pixel > 0) {
      const image = new Image();
      image.onload = () => {
        if (this.environment !== environment) return; // another environment was chosen since
        this.image = image;
        this.imageExtent = {
          x0: 0,
          y0: 0,
          x1: image.naturalWidth * map.metres_per_pixel,
          y1: image.naturalHeight * map.metres_per_pixel,
        };
      };
      image.src = map.image_url;
    }
    this.drawn = { frame: null, refined: false, dots: 0, global_ids: [], trails: 0, source: "none" };
  }

  /** The global id whose dot is under the click ``event``, or 0. */
  dotAt(event) {
    const box = this.canvas.getBoundingClientRect();
    const [x, y] = [(event.clientX - box.left) * devicePixelRatio, (event.clientY - box.top) * devicePixelRatio];
    let best = { gid: 0, distance: PICK_RADIUS_PX * devicePixelRatio };
    for (const dot of this.dots) {
      const distance = Math.hypot(dot.x - x, dot.y - y);
      if (distance <= best.distance) best = { gid: dot.gid, distance };
    }
    return best.gid;
  }

  /** Draw the map at global frame ``frame`` (null: the plan only); returns what was drawn. */
  draw(frame) {
    const trailFrames = Math.max(1, Math.round(TRAIL_SECONDS * this.fps));
    const positions = frame === null ? new Map() : this.buffer.positions(frame, trailFrames);
    for (const trail of positions.values()) {
      for (const [, x, y] of trail) this._grow(x, y);
    }
    const extent = this.imageExtent ?? this._padded();
    const canvas = this.canvas;
    const cssWidth = canvas.parentElement.clientWidth;
    const scale = (cssWidth / (extent.x1 - extent.x0)) * devicePixelRatio;
    const width = Math.round(cssWidth * devicePixelRatio);
    const height = Math.round((extent.y1 - extent.y0) * scale);
    if (canvas.width !== width || canvas.height !== height) {
      [canvas.width, canvas.height] = [width, height];
      canvas.style.height = `${height / devicePixelRatio}px`;
    }
    const px = (x) => (x - extent.x0) * scale;
    const py = (y) => (y - extent.y0) * scale;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    this._plan(ctx, extent, px, py);

    const ids = [];
    this.dots = [];
    let trails = 0;
    ctx.lineCap = ctx.lineJoin = "round";
    for (const [gid, trail] of positions) {
      if (trail.length > 1) {
        trails += 1;
        for (let i = 1; i < trail.length; i++) {
          ctx.strokeStyle = colour(gid, 0.15 + (0.6 * i) / trail.length);
          ctx.lineWidth = 3 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(px(trail[i - 1][1]), py(trail[i - 1][2]));
          ctx.lineTo(px(trail[i][1]), py(trail[i][2]));
          ctx.stroke();
        }
      }
      const [lastFrame, x, y] = trail[trail.length - 1];
      if (lastFrame !== frame) continue; // out of every camera's view now: trail only
      ids.push(gid);
      this.dots.push({ gid, x: px(x), y: py(y) });
      const focused = this.focus === gid;
      ctx.globalAlpha = this.focus && !focused ? 0.35 : 1;
      ctx.fillStyle = colour(gid);
      ctx.strokeStyle = focused ? "#111" : "#fff";
      ctx.lineWidth = (focused ? 3 : 2) * devicePixelRatio;
      ctx.beginPath();
      ctx.arc(px(x), py(y), (focused ? 10 : 7) * devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#222";
      ctx.font = `bold ${12 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.textBaseline = "middle";
      ctx.fillText(`#${gid}`, px(x) + 10 * devicePixelRatio, py(y));
    }
    this.drawn = {
      frame,
      refined: frame !== null && this.buffer.isRefined(frame),
      dots: ids.length,
      global_ids: ids.sort((a, b) => a - b),
      trails,
      focus: this.focus,
      // Where each dot is, in the canvas's CSS pixels (what a click there picks).
      dots_at: this.dots.map(({ gid, x, y }) => ({ global_id: gid, x: x / devicePixelRatio, y: y / devicePixelRatio })),
      fields_of_view: this.footprints.map((footprint) => footprint.id),
      unplaced: this.unplaced.map((camera) => ({ ...camera })),
      source: this.image ? "image" : "rectangle",
      extent_m: [extent.x0, extent.y0, extent.x1, extent.y1],
    };
    return this.drawn;
  }

  _plan(ctx, extent, px, py) {
    if (this.image) {
      ctx.drawImage(this.image, 0, 0, ctx.canvas.width, ctx.canvas.height);
    } else {
      ctx.fillStyle = "#f7f7f4";
      ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
      // A 1 m grid.
      ctx.strokeStyle = "#e2e2dc";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let x = Math.ceil(extent.x0); x <= extent.x1; x++) {
        ctx.moveTo(px(x), 0);
        ctx.lineTo(px(x), ctx.canvas.height);
      }
      for (let y = Math.ceil(extent.y0); y <= extent.y1; y++) {
        ctx.moveTo(0, py(y));
        ctx.lineTo(ctx.canvas.width, py(y));
      }
      ctx.stroke();
      ctx.strokeStyle = "#888";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.strokeRect(1, 1, ctx.canvas.width - 2, ctx.canvas.height - 2);
      ctx.fillStyle = "#888";
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.textBaseline = "bottom";
      const size = `${(extent.x1 - extent.x0).toFixed(1)} m × ${(extent.y1 - extent.y0).toFixed(1)} m`;
      ctx.fillText(size, 6 * devicePixelRatio, ctx.canvas.height - 4 * devicePixelRatio);
    }
    // Where each camera sees the floor.
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    for (const { id, hull } of this.footprints) {
      ctx.strokeStyle = "rgba(70, 90, 140, 0.55)";
      ctx.fillStyle = "rgba(70, 90, 140, 0.06)";
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.beginPath();
      hull.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
      ctx.setLineDash([]);
      const [cx, cy] = hull.reduce(([sx, sy], [x, y]) => [sx + x / hull.length, sy + y / hull.length], [0, 0]);
      ctx.fillStyle = "rgba(70, 90, 140, 0.8)";
      ctx.fillText(id, px(cx) - 8 * devicePixelRatio, py(cy));
    }
  }

  _grow(x, y) {
    const e = this.extent;
    this.extent = { x0: Math.min(e.x0, x), y0: Math.min(e.y0, y), x1: Math.max(e.x1, x), y1: Math.max(e.y1, y) };
  }

  // The extent with a margin, whole metres, and the origin in it when it is near.
  _padded() {
    const e = this.extent;
    const x0 = e.x0 >= 0 && e.x0 < 3 ? 0 : Math.floor(e.x0 - MARGIN_M);
    const y0 = e.y0 >= 0 && e.y0 < 3 ? 0 : Math.floor(e.y0 - MARGIN_M);
    return { x0, y0, x1: Math.ceil(e.x1 + MARGIN_M), y1: Math.ceil(e.y1 + MARGIN_M) };
  }
}

function bounds(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

// Andrew's monotone chain; points as [x, y].
function convexHull(points) {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (sorted.length < 3) return sorted;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list) => {
    const out = [];
    for (const p of list) {
      while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], p) <= 0) out.pop();
      out.push(p);
    }
    out.pop();
    return out;
  };
  return [...half(sorted), ...half([...sorted].reverse())];
}
