// SpotOn's dashboard: wait for /health, pick a site (environments.js), show its floor plan
// and camera fields of view, start a task (start.js: one per site unless asked), follow its
// events (sse.js), play each camera's sub-videos with boxes and global ids drawn in sync
// (cameras.js), show everyone on the floor plan with a short trail (floormap.js) and, once
// the task ends or on Refresh, where people spent time (heatmap.js). The task is paused,
// resumed, cancelled and focused through the API (controls.js); past tasks are listed and
// reopened (tasks.js). Plain JS modules, no build step, nothing from a CDN.
//
// `/?task=<task_id>` follows a task (the page sets it when it starts or opens one, so a reload
// picks the task up again, replaying its stream from the start). Other modules open a task
// with `document.dispatchEvent(new CustomEvent("spoton:open-task", { detail: { task_id } }))`.
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
//     paused,                  // the players are held: the task is paused, or its playback
//     videos_playing,          // camera videos playing right now
//     cameras: { <camera_id>: { batch, src, playing, ended, ready_state, current_time, error,
//                               frame,       // global frame index on screen (null: none yet)
//                               has_data,    // whether that frame's tracking_update was there
//                               refined,     // whether its tracks are the refined ones (tracks_refined)
//                               boxes,       // boxes drawn for that frame
//                               global_ids } },
//     map: { frame, refined, dots, global_ids, trails, source: "image" | "rectangle", extent_m },
//     heatmap: { task_id, loads, shown, error, images_in_page, placeholder },
//     controls: { task_paused, playback_paused, focus, enabled: { pause, resume, cancel, clear_focus },
//                 actions: [{ action, global_id, status, state }] },
//     environments: [environment_id…],   // the picker's sites
//     selected_environment,              // the picker's choice
//     offer: { environment_id, task_id } | null,   // "that site already runs a task"
//     tasks: { tasks: [{ task_id, environment_id, state, progress }], next_page_token, loads },
//   }
//   (cameras.<id> also carries box_positions: [[x1, y1, x2, y2]…] of the boxes drawn; map also
//    focus, fields_of_view: [camera_id…] and unplaced: [{ camera_id, reason }])
//   window.spoton.tracks(frame) -> { <camera_id>: [track…] } for a buffered frame, else null
//   window.spoton.dropConnection() -> drop the event stream as a network failure would; it
//                                     reconnects with Last-Event-ID and back-off

import { CameraWall } from "./cameras.js";
import { TERMINAL_STATES, TaskControls } from "./controls.js";
import { loadEnvironment, loadSites } from "./environments.js";
import { FloorMap } from "./floormap.js";
import { HeatmapView } from "./heatmap.js";
import { getJson } from "./http.js";
import { TaskEventSource } from "./sse.js";
import { RunningOffer, startTask } from "./start.js";
import { TaskList } from "./tasks.js";
import { TrackBuffer } from "./tracks.js";

const $ = (id) => document.getElementById(id);
const HEALTH_POLL_MS = 1000;

const buffer = new TrackBuffer();
const wall = new CameraWall($("cameras"), $("camera-template"), buffer, (gid) => controls.focusOn(gid));
const floor = new FloorMap($("map"), buffer);
const heatmap = new HeatmapView($("heatmap"), $("heatmap-refresh"));
const controls = new TaskControls(
  { pause: $("pause"), resume: $("resume"), cancel: $("cancel"), clearFocus: $("clear-focus"), focus: $("focus") },
  {
    players: (paused) => wall.setPaused(paused),
    focus: (gid) => {
      wall.setFocus(gid);
      floor.focus = gid;
    },
    error: showError,
    task: (answer) => {
      showStatus(answer);
      taskList.update(answer);
    },
  },
);
const taskList = new TaskList(
  {
    table: $("task-list"),
    more: $("tasks-more"),
    refresh: $("tasks-refresh"),
    state: $("tasks-state"),
    here: $("tasks-here"),
  },
  (taskId) => openTask(taskId),
  showError,
);
const offer = new RunningOffer(
  {
    panel: $("running-offer"),
    text: $("running-offer-text"),
    open: $("open-running"),
    another: $("start-another"),
    dismiss: $("dismiss-offer"),
  },
  { open: (taskId) => openTask(taskId), another: (environmentId) => start(environmentId, true) },
);

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
  environments = await loadSites();
  const select = $("environment");
  select.replaceChildren(
    ...environments.map((env) => new Option(`${env.name || env.environment_id}`, env.environment_id)),
  );
  select.disabled = $("start").disabled = environments.length === 0;
  if (environments.length === 0) showError("No site is registered: register an environment (make demo does).");
}

function selected() {
  return environments.find((env) => env.environment_id === $("environment").value) ?? null;
}

// The chosen site, before any task: its floor plan, camera fields of view and cameras. A task
// still going stays on screen (its site's plan comes with the next task); a finished one
// makes way.
function showSite() {
  const environment = selected();
  offer.hide();
  taskList.setEnvironment(environment?.environment_id ?? "");
  if (task.task_id && !TERMINAL_STATES.has(task.state)) return;
  if (task.task_id) {
    source?.close();
    source = null;
    streamState = "idle";
    task = emptyTask();
    buffer.clear();
    controls.follow(null);
    heatmap.setTask(null, null);
    taskList.setFollowed(null);
    history.replaceState(null, "", "/");
    $("task").textContent = $("step").textContent = "";
    $("state").textContent = $("stream").textContent = "idle";
    $("progress").value = 0;
  }
  wall.reset();
  wall.setCameras(environment?.cameras ?? []);
  floor.setEnvironment(environment);
}

async function start(environmentId = $("environment").value, allowConcurrent = false) {
  showError("");
  offer.hide();
  const environment = environments.find((env) => env.environment_id === environmentId);
  if (!environment) return;
  $("start").disabled = true;
  startedAt = performance.now();
  timings = {};
  try {
    const answer = await startTask(environmentId, allowConcurrent);
    if (answer.running) {
      offer.show(environmentId, answer.running);
      return;
    }
    mark("task_created");
    history.replaceState(null, "", `?task=${encodeURIComponent(answer.started.task_id)}`);
    follow(answer.started.task_id, answer.started.events_url, environment);
    taskList.load();
  } catch (error) {
    showError(error.message);
  } finally {
    $("start").disabled = false;
  }
}

// Follow a task already there (from the list, a job, the running-task offer or ?task=):
// its events replay from the start.
async function openTask(taskId) {
  showError("");
  try {
    const status = await getJson(`/api/v1/processing-tasks/${encodeURIComponent(taskId)}/status`);
    let environment = environments.find((env) => env.environment_id === status.environment_id);
    if (environment) $("environment").value = status.environment_id;
    // A job's environment is no site: it is fetched on its own and stays out of the picker.
    environment ??= await loadEnvironment(status.environment_id).catch(() => null);
    history.replaceState(null, "", `?task=${encodeURIComponent(taskId)}`);
    startedAt = performance.now();
    timings = {};
    follow(taskId, `/api/v1/processing-tasks/${encodeURIComponent(taskId)}/events`, environment, status);
  } catch (error) {
    showError(`Task ${taskId}: ${error.message}`);
  }
}

function follow(taskId, eventsUrl, environment, status = null) {
  source?.close();
  buffer.clear();
  wall.reset();
  wall.setCameras(environment?.cameras ?? []);
  floor.setEnvironment(environment ?? null);
  heatmap.setTask(environment?.environment_id ?? status?.environment_id ?? null, taskId);
  task = { ...emptyTask(), task_id: taskId, environment_id: environment?.environment_id ?? null };
  controls.follow(taskId);
  // Its events replay from the start: the status is shown until they catch up with it.
  if (status) showStatus(status);
  taskList.setFollowed(taskId);
  $("task").textContent = `task ${taskId}`;
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

function showStatus(data) {
  Object.assign(task, { state: data.state, progress: data.progress, step: data.step, error: data.error });
  $("progress").value = data.progress;
  $("state").textContent = data.state;
  $("step").textContent = data.error || data.step;
}

function onEvent(type, data) {
  mark("first_event");
  switch (type) {
    case "status_update":
      if (!controls.setState(data.state, data.sequence)) break; // a control's answer was newer
      showStatus(data);
      taskList.update({ task_id: task.task_id, ...data });
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
    case "focus_update":
      controls.focusUpdate(data.global_id ?? 0);
      break;
    case "problem":
      showError(`${data.title}: ${data.detail}`);
      break;
    default:
      break;
  }
}

let mapState = floor.draw(null);
let unplacedShown = "";

function render() {
  const frame = wall.tick();
  mapState = floor.draw(frame);
  const shown = [...wall.views.values()].map((view) => view.drawn.frame).filter((f) => f !== null);
  if (shown.length) buffer.trim(Math.min(...shown) - 10 * 60);
  $("updates").textContent = buffer.received;
  $("people").textContent = mapState.dots;
  $("waiting").hidden = !wall.waiting;
  const unplaced = mapState.unplaced.map(({ camera_id: id, reason }) => `${id}: ${reason}`);
  if (unplaced.join("\n") !== unplacedShown) {
    unplacedShown = unplaced.join("\n");
    const items = unplaced.map((text) => Object.assign(document.createElement("li"), { textContent: text }));
    $("unplaced").replaceChildren(...items);
  }
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
    controls: controls.state(),
    environments: environments.map((env) => env.environment_id),
    selected_environment: $("environment").value || null,
    offer: offer.state(),
    tasks: taskList.state(),
  };
}

window.spoton = {
  version: 2,
  state,
  tracks(frame) {
    const perCamera = buffer.frames.get(frame);
    return perCamera ? Object.fromEntries(perCamera) : null;
  },
  dropConnection() {
    source?.dropConnection();
  },
};

$("start").addEventListener("click", () => start());
$("environment").addEventListener("change", showSite);
$("map").addEventListener("click", (event) => {
  const gid = floor.dotAt(event);
  if (gid) controls.focusOn(gid);
});
document.addEventListener("spoton:open-task", (event) => openTask(event.detail.task_id));
requestAnimationFrame(render);
await waitForHealth();
try {
  await loadEnvironments();
  showSite();
  taskList.load();
  const taskId = new URLSearchParams(location.search).get("task");
  if (taskId) await openTask(taskId);
} catch (error) {
  showError(error.message);
}
