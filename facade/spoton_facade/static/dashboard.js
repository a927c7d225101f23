// SpotOn's dashboard: wait for /health, pick an environment, start a task, follow its events
// (sse.js), play each camera's sub-videos with boxes and global ids drawn in sync
// (cameras.js), and show everyone on the floor plan with a short trail (floormap.js) and,
// once the task ends or on Refresh, where people spent time (heatmap.js).
// Plain JS modules, no build step, nothing from a CDN.
//
// `/?task=<task_id>` follows a task already started (the page sets it when it starts one, so
// a reload picks the task up again, resuming its stream from the start).
//
// Test hook: `window.spoton`, for browser tests and for poking at from the console. It reads
// what the page drew, so tests need no pixel heuristics:
//
//   window.spoton.state() -> {
//     health, environment_id, task_id, task_state, progress, step, error,
//     stream: { state, connected, last_event_id, connections, reconnects, gaps },
//     tracking_updates,        // tracking_update events received
//     tracks_refined,          // tracks_refined events applied (their frames replaced)
//     buffered_frames,         // of them, frames held in the buffer (never dropped before shown)
//     timings_ms: { task_created, first_event, first_media, first_tracking_update },
//                              // ms after the start request was sent; null until it happens
//     batch,                   // sub-video batch index on screen
//     waiting_for_tracks,      // playback held until the tracks for the next frames arrive
//     paused,                  // the Pause button is down
//     videos_playing,          // camera videos playing right now
//     cameras: { <camera_id>: { batch, src, playing, ended, ready_state, current_time, error,
//                               frame,       // global frame index on screen (null: none yet)
//                               has_data,    // whether that frame's tracking_update was there
//                               refined,     // whether its tracks are the refined ones (tracks_refined)
//                               boxes,       // boxes drawn for that frame
//                               global_ids } },
//     map: { frame, refined, dots, global_ids, trails, source: "image" | "rectangle", extent_m },
//     heatmap: { task_id, loads, shown, error },
//   }
//   window.spoton.tracks(frame) -> { <camera_id>: [track…] } for a buffered frame, else null
//   window.spoton.dropConnection() -> drop the event stream as a network failure would; it
//                                     reconnects with Last-Event-ID and back-off

import { CameraWall } from "./cameras.js";
import { FloorMap } from "./floormap.js";
import { HeatmapView } from "./heatmap.js";
import { getJson } from "./http.js";
import { TaskEventSource } from "./sse.js";
import { TrackBuffer } from "./tracks.js";

const $ = (id) => document.getElementById(id);
const TERMINAL_STATES = new Set(["completed", "failed", "cancelled"]);
const HEALTH_POLL_MS = 1000;

const buffer = new TrackBuffer();
const wall = new CameraWall($("cameras"), $("camera-template"), buffer);
const floor = new FloorMap($("map"), buffer);
const heatmap = new HeatmapView($("heatmap"), $("heatmap-refresh"));

let health = "unknown";
let environments = [];
let source = null;
let streamState = "idle";
let task = emptyTask();
let timings = {};
let startedAt = 0;

function emptyTask() {
  return { task_id: null, environment_id: null, state: null, progress: 0, step: "", error: "" };
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
      const response = await fetch("/health", { cache: "no-store" });
      ({ status, components } = await response.json());
      ready = response.ok;
    } catch {
      // The facade itself is down or restarting; keep polling.
    }
    health = status;
    const pill = $("health");
    pill.textContent = status;
    pill.className = `pill ${status}`;
    pill.title = (components ?? []).map((c) => `${c.name}: ${c.status} ${c.detail}`).join("\n");
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
  if (environments.length === 0) showError("No environment is registered.");
}

async function startTask() {
  showError("");
  const environment = environments.find((env) => env.environment_id === $("environment").value);
  if (!environment) return;
  $("start").disabled = true;
  startedAt = performance.now();
  timings = {};
  try {
    const started = await getJson("/api/v1/processing-tasks/start", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ environment_id: environment.environment_id }),
    });
    mark("task_created");
    history.replaceState(null, "", `?task=${encodeURIComponent(started.task_id)}`);
    follow(started.task_id, started.events_url, environment);
  } catch (error) {
    showError(error.message);
  } finally {
    $("start").disabled = false;
  }
}

async function followExisting(taskId) {
  try {
    const status = await getJson(`/api/v1/processing-tasks/${encodeURIComponent(taskId)}/status`);
    const environment = environments.find((env) => env.environment_id === status.environment_id);
    $("environment").value = status.environment_id;
    startedAt = performance.now();
    timings = {};
    follow(taskId, `/api/v1/processing-tasks/${encodeURIComponent(taskId)}/events`, environment);
  } catch (error) {
    showError(`Task ${taskId}: ${error.message}`);
  }
}

function follow(taskId, eventsUrl, environment) {
  source?.close();
  buffer.clear();
  wall.reset();
  wall.setCameraFps(environment?.cameras ?? []);
  floor.setEnvironment(environment ?? null);
  heatmap.setTask(environment?.environment_id ?? null, taskId);
  task = { ...emptyTask(), task_id: taskId, environment_id: environment?.environment_id ?? null };
  $("task").textContent = `task ${taskId}`;
  $("pause").disabled = false;
  source = new TaskEventSource(eventsUrl, {
    onEvent,
    onState: (state, detail) => {
      streamState = state;
      $("stream").textContent = detail ? `${state} (${detail})` : state;
      if (state === "failed") showError(`Event stream: ${detail}`);
      if (state === "ended" || state === "failed") wall.setTaskActive(false);
    },
  });
}

function mark(name) {
  timings[name] ??= Math.round(performance.now() - startedAt);
}

function onEvent(type, data) {
  mark("first_event");
  switch (type) {
    case "status_update":
      Object.assign(task, { state: data.state, progress: data.progress, step: data.step, error: data.error });
      $("progress").value = data.progress;
      $("state").textContent = data.state;
      $("step").textContent = data.error || data.step;
      if (data.error) showError(data.error);
      if (TERMINAL_STATES.has(data.state)) {
        wall.setTaskActive(false);
        source.close();
        streamState = "closed";
        $("stream").textContent = "closed (task over)";
        heatmap.load();
      }
      break;
    case "media_available":
      mark("first_media");
      wall.addMedia(data);
      break;
    case "tracking_update":
      mark("first_tracking_update");
      buffer.add(data);
      break;
    case "tracks_refined":
      buffer.replace(data);
      break;
    case "batch_processing_complete":
      wall.completeBatch(data.sub_video_batch_index);
      break;
    case "problem":
      showError(`${data.title}: ${data.detail}`);
      break;
    default:
      break;
  }
}

let mapState = floor.draw(null);

function render() {
  const frame = wall.tick();
  mapState = floor.draw(frame);
  const shown = [...wall.views.values()].map((view) => view.drawn.frame).filter((f) => f !== null);
  if (shown.length) buffer.trim(Math.min(...shown) - 10 * 60);
  $("updates").textContent = buffer.received;
  $("people").textContent = mapState.dots;
  $("waiting").hidden = !wall.waiting;
  $("pause").textContent = wall.userPaused ? "Play" : "Pause";
  requestAnimationFrame(render);
}

function state() {
  const screen = wall.snapshot();
  return {
    health,
    environment_id: task.environment_id,
    task_id: task.task_id,
    task_state: task.state,
    progress: task.progress,
    step: task.step,
    error: task.error,
    stream: {
      state: streamState,
      connected: source?.connected ?? false,
      last_event_id: source?.lastEventId ?? 0,
      connections: source?.connections ?? 0,
      reconnects: source?.reconnects ?? 0,
      gaps: source?.gaps ?? 0,
    },
    tracking_updates: buffer.received,
    tracks_refined: buffer.refined,
    buffered_frames: buffer.frames.size,
    timings_ms: {
      task_created: timings.task_created ?? null,
      first_event: timings.first_event ?? null,
      first_media: timings.first_media ?? null,
      first_tracking_update: timings.first_tracking_update ?? null,
    },
    batch: screen.batch,
    waiting_for_tracks: screen.waiting_for_tracks,
    paused: screen.paused,
    videos_playing: Object.values(screen.cameras).filter((camera) => camera.playing).length,
    cameras: screen.cameras,
    map: { ...mapState },
    heatmap: heatmap.state(),
  };
}

window.spoton = {
  version: 1,
  state,
  tracks(frame) {
    const perCamera = buffer.frames.get(frame);
    return perCamera ? Object.fromEntries(perCamera) : null;
  },
  dropConnection() {
    source?.dropConnection();
  },
};

$("start").addEventListener("click", startTask);
$("pause").addEventListener("click", () => wall.togglePause());
requestAnimationFrame(render);
await waitForHealth();
try {
  await loadEnvironments();
  const taskId = new URLSearchParams(location.search).get("task");
  if (taskId) await followExisting(taskId);
} catch (error) {
  showError(error.message);
}
