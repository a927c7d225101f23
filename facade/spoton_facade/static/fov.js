// Where each camera sees the floor, before any track exists: the camera image's border pushed
// through its homography (image pixels -> map metres).
//
// The top of a camera image often shows walls or sky, which a floor homography sends past the
// horizon (w <= 0) or kilometres away; those border points are left out, so the field of view
// is the part of the image that lands on the floor near the points the homography was measured
// on. Example:
//
//   fieldOfView({ width: 640, height: 480, homography: { matrix: [0.01, 0, 0, 0, 0.01, 0, 0, 0, 1] } })
//   // -> [[0, 0], [1.6, 0], …, [6.4, 4.8], …]: the image border, 1 px = 1 cm

// Samples per image edge: enough for the polygon to follow the horizon cut-off.
const EDGE_SAMPLES = 16;
// How far from the measured map points a projected point may land and still be floor.
const MIN_REACH_M = 15;
const REACH_FACTOR = 3;

/** Why a camera has no field of view on the map, or null when it has one. */
export function missingReason(camera) {
  const matrix = camera.homography?.matrix ?? [];
  if (matrix.length !== 9) return "no homography: its people are not placed on the map";
  if (!(camera.width > 0 && camera.height > 0)) return "image size unknown: its field of view cannot be drawn";
  return null;
}

/** The image point [u, v] on the map through the row-major 3x3 ``m``; null past the horizon. */
export function project(m, [u, v]) {
  const w = m[6] * u + m[7] * v + m[8];
  if (!(w > 1e-9)) return null;
  return [(m[0] * u + m[1] * v + m[2]) / w, (m[3] * u + m[4] * v + m[5]) / w];
}

/** The camera's field of view as a map polygon [[x, y]…] (metres); [] when it cannot be drawn. */
export function fieldOfView(camera) {
  if (missingReason(camera)) return [];
  const m = camera.homography.matrix;
  const { width: w, height: h } = camera;
  const corners = [
    [0, 0],
    [w, 0],
    [w, h],
    [0, h],
  ];
  const border = [];
  for (let i = 0; i < 4; i++) {
    const [a, b] = [corners[i], corners[(i + 1) % 4]];
    for (let s = 0; s < EDGE_SAMPLES; s++) {
      const t = s / EDGE_SAMPLES;
      border.push([a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]);
    }
  }
  const near = reach(camera.homography.map_points ?? [], m, w, h);
  return border.map((p) => project(m, p)).filter((p) => p && near(p));
}

// Whether a map point is close enough to where the homography was measured to be floor.
function reach(mapPoints, m, w, h) {
  // Without measured points, the bottom edge (nearest the camera) stands for them.
  const anchors = mapPoints.length ? mapPoints : [project(m, [0, h]), project(m, [w, h])].filter(Boolean);
  if (!anchors.length) return () => false;
  const cx = anchors.reduce((s, p) => s + p[0], 0) / anchors.length;
  const cy = anchors.reduce((s, p) => s + p[1], 0) / anchors.length;
  const spread = Math.max(...anchors.map((p) => Math.hypot(p[0] - cx, p[1] - cy)));
  const limit = Math.max(MIN_REACH_M, REACH_FACTOR * spread);
  return ([x, y]) => Math.hypot(x - cx, y - cy) <= limit;
}
