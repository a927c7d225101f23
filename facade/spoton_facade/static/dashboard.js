// SpotOn's minimal dashboard: wait for /health, pick an environment, start a task, follow its
// events over SSE and draw each camera's tracks over its video, in step with playback.

const $ = (id) => document.getElementById(id);
const TERMINAL_STATES = new Set(["completed", "failed", "cancelled"]);
// Tracking updates kept for drawing; the oldest go first once playback has long passed them.
const MAX_BUFFERED_FRAMES = 20000;
const HEALTH_POLL_MS = 2000;

// global_frame_index -> Map(camera_id -> tracks)
const tracksByFrame = new Map();
// camera_id -> { video, canvas, caption, queue: [media_url…], current: media_url | null }
const cameras = new Map();
// camera_id -> fps from the catalogue, for media entries that do not carry one
const cameraFps = new Map();
let environments = [];
let events = null;
let trackingUpdates = 0;

async function getJson(url, init) {
  const response = await fetch(url, init);
  const body = await response.json().catch(() => ({}));
  // Errors are RFC 9457 problem+json: `detail` says what went wrong.
  if (!response.ok) throw new Error(body.detail || body.title || response.statusText);
  return body;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

async function waitForHealth() {
  for (;;) {
    let status = "unreachable";
    let components = [];
    let ready = false;
    try {
      const response = await fetch("/health");
      ({ status, components } = await response.json());
      ready = response.ok;
    } catch {
      // The facade itself is down or restarting; keep polling.
    }
    const pill = $("health");
    pill.textContent = status;
    pill.className = `pill ${status}`;
    pill.title = components.map((c) => `${c.name}: ${c.status} ${c.detail}`).join("\n");
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
  }
}

async function loadEnvironments() {
  ({ environments } = await getJson("/api/v1/environments"));
  const select = $("environment");
  select.replaceChildren(
    ...environments.map((env) => new Option(`${env.name || env.environment_id}`, env.environment_id)),
  );
  select.disabled = $("start").disabled = environments.length === 0;
}

async function startTask() {
  showError("");
  const environmentId = $("environment").value;
  const environment = environments.find((env) => env.environment_id === environmentId);
  for (const camera of environment?.cameras ?? []) cameraFps.set(camera.camera_id, camera.fps);
  try {
    const started = await getJson("/api/v1/processing-tasks/start", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ environment_id: environmentId }),
    });
    $("task").textContent = `task ${started.task_id}`;
    follow(started.events_url);
  } catch (error) {
    showError(error.message);
  }
}

function follow(url) {
  events?.close();
  tracksByFrame.clear();
  cameras.clear();
  $("cameras").replaceChildren();
  trackingUpdates = 0;
  events = new EventSource(url);
  const on = (type, handle) => events.addEventListener(type, (e) => handle(JSON.parse(e.data)));
  on("status_update", (status) => {
    $("progress").value = status.progress;
    $("state").textContent = status.state;
    $("step").textContent = status.error || status.step;
    // Closing here stops EventSource from reconnecting to a finished task.
    if (TERMINAL_STATES.has(status.state)) events.close();
  });
  on("media_available", (media) => media.media_urls.forEach(enqueueMedia));
  on("tracking_update", bufferTracks);
  on("problem", (problem) => showError(`${problem.title}: ${problem.detail}`));
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) showError("The event stream was closed.");
  };
}

function bufferTracks(update) {
  const perCamera = new Map(update.cameras.map((c) => [c.camera_id, c.tracks]));
  tracksByFrame.set(update.global_frame_index, perCamera);
  while (tracksByFrame.size > MAX_BUFFERED_FRAMES) tracksByFrame.delete(tracksByFrame.keys().next().value);
  $("updates").textContent = ++trackingUpdates;
}

function enqueueMedia(media) {
  let camera = cameras.get(media.camera_id);
  if (!camera) {
    const figure = $("camera-template").content.firstElementChild.cloneNode(true);
    camera = {
      video: figure.querySelector("video"),
      canvas: figure.querySelector("canvas"),
      caption: figure.querySelector("figcaption"),
      queue: [],
      current: null,
    };
    camera.video.addEventListener("ended", () => playNext(camera));
    cameras.set(media.camera_id, camera);
    $("cameras").append(figure);
  }
  camera.queue.push(media);
  if (!camera.current) playNext(camera);
}

function playNext(camera) {
  camera.current = camera.queue.shift() ?? null;
  if (!camera.current) return;
  const { camera_id, sub_video_filename, url } = camera.current;
  camera.caption.textContent = `${camera_id} · ${sub_video_filename}`;
  camera.video.src = url;
  camera.video.play().catch(() => {}); // autoplay may be refused; the controls remain
}

function colour(globalId) {
  return globalId ? `hsl(${(globalId * 137.508) % 360} 85% 55%)` : "#bbb";
}

function drawCamera({ video, canvas, current }) {
  const width = video.clientWidth;
  const height = video.clientHeight;
  if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (!current || !video.videoWidth) return;
  const fps = current.fps || cameraFps.get(current.camera_id);
  // The small epsilon keeps exact frame times (e.g. 0.1 s × 30) from flooring one frame early.
  const offset = Math.min(Math.floor(video.currentTime * fps + 1e-3), (current.num_frames_in_sub_video || Infinity) - 1);
  const frame = current.start_global_frame_index + offset;
  const tracks = tracksByFrame.get(frame)?.get(current.camera_id) ?? [];
  const sx = width / video.videoWidth;
  const sy = height / video.videoHeight;
  ctx.lineWidth = 2;
  ctx.font = "bold 13px system-ui, sans-serif";
  for (const { box, global_id, track_id } of tracks) {
    ctx.strokeStyle = ctx.fillStyle = colour(global_id);
    ctx.strokeRect(box.x1 * sx, box.y1 * sy, (box.x2 - box.x1) * sx, (box.y2 - box.y1) * sy);
    ctx.fillText(global_id ? `#${global_id}` : `local ${track_id}`, box.x1 * sx + 2, box.y1 * sy - 4);
  }
}

function drawAll() {
  for (const camera of cameras.values()) drawCamera(camera);
  requestAnimationFrame(drawAll);
}

$("start").addEventListener("click", startTask);
requestAnimationFrame(drawAll);
await waitForHealth();
await loadEnvironments().catch((error) => showError(error.message));
