// The dashboard's Jobs panel: upload a video (with its fps, detection threshold, homography and
// zones when given), see the jobs with their progress, speed (processing and rendering frames
// per second), time taken and time left, cancel or delete them, open a job's task in the views,
// play a finished job's annotated video and download its results. Plain JS module, no build step.
//
// The list is read once (and on Refresh or after an upload); each unfinished job then moves
// with its own event stream (GET /api/v1/jobs/{id}/events, `job_update` events carrying the
// job), not by polling. A browser holds few connections per server (HTTP/1.1: six), which the
// camera videos need too, so at most MAX_JOB_STREAMS jobs are followed at once; the others
// wait for a stream to end (a job's stream ends with its final state).
//
// A job's environment (origin "job") belongs to the job: it shows here, under the job, and
// Open task follows the job's task in the views; the site picker never offers it.
//
// Test hook: `window.spotonJobs.state()` -> {
//   jobs: [{ job_id, name, state, progress, step, eta_seconds, frames_per_second,
//            rendering_frames_per_second, elapsed_seconds, environment_id, task_id }],
//   upload: { state: "idle" | "uploading" | "done" | "failed", job_id, error },
//   player: { job_id, src, ready_state, current_time, duration, paused, ended, error,
//             video_width, video_height },
//   streams: { open: [job_id…], updates },   // job streams now open; job_update events received
//   list_loads,                              // times the list was read (GET /api/v1/jobs)
// }

import { getJson } from "./http.js";
import { TaskEventSource } from "./sse.js";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["completed", "failed", "cancelled"]);
export const MAX_JOB_STREAMS = 2;

let jobs = [];
let upload = { state: "idle", job_id: null, error: null };
let playing = null;
let listLoads = 0;
let updates = 0;
// job_id -> TaskEventSource
const streams = new Map();

function showError(message) {
  $("job-error").hidden = !message;
  $("job-error").textContent = message || "";
}

/** "1 min 5 s", "42 s", "0.4 s". */
export function duration(seconds) {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function speed(job) {
  const parts = [];
  if (job.frames_per_second > 0) parts.push(`processing ${job.frames_per_second.toFixed(1)} fps`);
  if (job.rendering_frames_per_second > 0) parts.push(`rendering ${job.rendering_frames_per_second.toFixed(1)} fps`);
  return parts.join(", ");
}

function elapsed(job) {
  if (job.elapsed_seconds > 0) return job.elapsed_seconds;
  // A server without the figure: from the job's own times.
  if (!job.started_at) return 0;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return Math.max(0, (end - Date.parse(job.started_at)) / 1000);
}

function time(job) {
  const took = elapsed(job);
  const parts = took > 0 ? [FINAL.has(job.state) ? `took ${duration(took)}` : `${duration(took)} so far`] : [];
  if (!FINAL.has(job.state) && job.eta_seconds > 0) parts.push(`${duration(job.eta_seconds)} left`);
  return parts.join(", ");
}

function button(label, action, value) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset[action] = value;
  return b;
}

function link(label, href) {
  const a = document.createElement("a");
  a.textContent = label;
  a.href = href;
  a.download = "";
  return a;
}

function render() {
  const rows = jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.job = job.job_id;
    const progress = document.createElement("progress");
    progress.max = 1;
    progress.value = job.progress;
    const running = job.state === "running" ? `running (${job.step})` : job.state;
    const state = job.error ? `${job.state}: ${job.error}` : running;
    const where = document.createElement("div");
    where.className = "muted";
    if (job.environment_id) where.textContent = `environment ${job.environment_id}`;
    const cells = [[job.name, where], [state], [progress], [speed(job)], [time(job)]].map((content) => {
      const cell = document.createElement("td");
      cell.append(...content);
      return cell;
    });
    const actions = document.createElement("td");
    if (job.task_id) actions.append(button("Open task", "task", job.task_id), " ");
    if (job.state === "completed") {
      const base = `/api/v1/jobs/${encodeURIComponent(job.job_id)}`;
      actions.append(button("Play", "play", job.job_id), " ");
      actions.append(link("video", `${base}/video`), " ", link("events", `${base}/events`), " ");
      actions.append(link("tracks", `${base}/tracks`), " ");
    }
    if (!FINAL.has(job.state)) actions.append(button("Cancel", "cancel", job.job_id));
    else actions.append(button("Delete", "delete", job.job_id));
    row.append(...cells, actions);
    return row;
  });
  $("job-list").tBodies[0].replaceChildren(...rows);
}

/** The list as the API has it; its unfinished jobs are then followed by their streams. */
async function refresh() {
  try {
    ({ jobs } = await getJson("/api/v1/jobs?page_size=20"));
    listLoads += 1;
    render();
    followUnfinished();
  } catch (error) {
    showError(`Jobs: ${error.message}`);
  }
}

function followUnfinished() {
  for (const [jobId, stream] of streams) {
    if (!jobs.some((job) => job.job_id === jobId)) {
      stream.close();
      streams.delete(jobId);
    }
  }
  // Oldest first: a queue runs them in that order.
  for (const job of [...jobs].reverse()) {
    if (streams.size >= MAX_JOB_STREAMS) break;
    if (!FINAL.has(job.state) && !streams.has(job.job_id)) follow(job);
  }
}

function follow(job) {
  const url = `/api/v1/jobs/${encodeURIComponent(job.job_id)}/events`;
  const done = () => {
    streams.get(job.job_id)?.close();
    streams.delete(job.job_id);
    followUnfinished();
  };
  const stream = new TaskEventSource(
    url,
    {
      onEvent: (type, data) => {
        if (type !== "job_update") return;
        updates += 1;
        const index = jobs.findIndex((j) => j.job_id === data.job_id);
        if (index < 0) return;
        jobs[index] = data;
        render();
        if (FINAL.has(data.state)) done();
      },
      onState: (state, detail) => {
        if (state === "failed") showError(`Job ${job.job_id}: ${detail}`);
        if (state === "ended" || state === "failed") done();
      },
    },
    // Resume after what the list already showed.
    job.revision ?? 0,
  );
  streams.set(job.job_id, stream);
}

function fields() {
  const form = new FormData();
  // The fields before the file: the facade streams the file on as it arrives.
  const text = {
    name: $("job-name").value.trim(),
    fps: $("job-fps").value.trim(),
    detection_threshold: $("job-threshold").value.trim(),
    homography: $("job-homography").value.trim(),
    zones: $("job-zones").value.trim(),
  };
  for (const name of ["homography", "zones"]) {
    if (!text[name]) continue;
    try {
      JSON.parse(text[name]);
    } catch (error) {
      throw new Error(`${name} is not valid JSON: ${error.message}`);
    }
  }
  if (text.zones && !text.homography) throw new Error("zones need a homography (zones are in map metres)");
  for (const [name, value] of Object.entries(text)) if (value) form.append(name, value);
  return form;
}

async function submit(event) {
  event.preventDefault();
  const file = $("job-file").files[0];
  if (!file) return;
  showError("");
  let form;
  try {
    form = fields();
  } catch (error) {
    upload = { state: "failed", job_id: null, error: error.message };
    showError(`Upload: ${error.message}`);
    return;
  }
  form.append("file", file);
  upload = { state: "uploading", job_id: null, error: null };
  $("job-submit").disabled = true;
  $("job-upload-status").textContent = `uploading ${file.name}…`;
  try {
    const job = await getJson("/api/v1/jobs", { method: "POST", body: form });
    upload = { state: "done", job_id: job.job_id, error: null };
    $("job-upload-status").textContent = `queued as ${job.job_id}`;
    await refresh();
  } catch (error) {
    upload = { state: "failed", job_id: null, error: error.message };
    $("job-upload-status").textContent = "";
    showError(`Upload refused: ${error.message}`);
  } finally {
    $("job-submit").disabled = false;
  }
}

function play(jobId) {
  const job = jobs.find((j) => j.job_id === jobId);
  const video = $("job-video");
  playing = jobId;
  $("job-player").hidden = false;
  $("job-caption").textContent = job ? `${job.name}: annotated` : jobId;
  video.src = `/api/v1/jobs/${encodeURIComponent(jobId)}/video`;
  video.play().catch((error) => showError(`Playback: ${error.message}`));
}

async function act(target) {
  const { play: playId, cancel, delete: remove, task } = target.dataset;
  try {
    if (task) document.dispatchEvent(new CustomEvent("spoton:open-task", { detail: { task_id: task } }));
    if (playId) play(playId);
    if (cancel) await getJson(`/api/v1/jobs/${encodeURIComponent(cancel)}/cancel`, { method: "POST" });
    if (remove) await getJson(`/api/v1/jobs/${encodeURIComponent(remove)}`, { method: "DELETE" });
    if (cancel || remove) await refresh();
  } catch (error) {
    showError(error.message);
  }
}

function state() {
  const video = $("job-video");
  return {
    jobs: jobs.map((job) => ({
      job_id: job.job_id,
      name: job.name,
      state: job.state,
      progress: job.progress,
      step: job.step,
      eta_seconds: job.eta_seconds ?? null,
      frames_per_second: job.frames_per_second ?? null,
      rendering_frames_per_second: job.rendering_frames_per_second ?? null,
      elapsed_seconds: elapsed(job),
      environment_id: job.environment_id,
      task_id: job.task_id,
    })),
    upload: { ...upload },
    player: {
      job_id: playing,
      src: video.currentSrc || null,
      ready_state: video.readyState,
      current_time: video.currentTime,
      duration: Number.isFinite(video.duration) ? video.duration : null,
      paused: video.paused,
      ended: video.ended,
      error: video.error ? `${video.error.code}: ${video.error.message}` : null,
      video_width: video.videoWidth,
      video_height: video.videoHeight,
    },
    streams: { open: [...streams.keys()], updates },
    list_loads: listLoads,
  };
}

window.spotonJobs = { version: 2, state, refresh };

$("job-upload").addEventListener("submit", submit);
$("jobs-refresh").addEventListener("click", refresh);
$("job-list").addEventListener("click", (event) => {
  if (event.target instanceof HTMLButtonElement) act(event.target);
});
refresh();
