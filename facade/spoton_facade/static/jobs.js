// The dashboard's Jobs panel: upload a video, see the jobs with their progress and time left
// (polled from /api/v1/jobs), cancel or delete them, play a finished job's annotated video
// and download its results. Plain JS module, no build step.
//
// Test hook: `window.spotonJobs.state()` -> {
//   jobs: [{ job_id, name, state, progress, step, eta_seconds }],   // as last listed
//   upload: { state: "idle" | "uploading" | "done" | "failed", job_id, error },
//   player: { job_id, src, ready_state, current_time, duration, paused, ended, error,
//             video_width, video_height },
// }

import { getJson } from "./http.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const FINAL = new Set(["completed", "failed", "cancelled"]);

let jobs = [];
let upload = { state: "idle", job_id: null, error: null };
let playing = null;

function showError(message) {
  $("job-error").hidden = !message;
  $("job-error").textContent = message || "";
}

function left(job) {
  if (FINAL.has(job.state) || job.eta_seconds == null) return "";
  const s = Math.round(job.eta_seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s left` : `${s} s left`;
}

function button(label, action, jobId) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset[action] = jobId;
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
    const cells = [
      job.name,
      job.error ? `${job.state}: ${job.error}` : job.state === "running" ? `running (${job.step})` : job.state,
      progress,
      left(job),
    ].map((content) => {
      const cell = document.createElement("td");
      cell.append(content);
      return cell;
    });
    const actions = document.createElement("td");
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

async function refresh() {
  try {
    ({ jobs } = await getJson("/api/v1/jobs?page_size=20"));
    render();
  } catch (error) {
    showError(`Jobs: ${error.message}`);
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

async function submit(event) {
  event.preventDefault();
  const file = $("job-file").files[0];
  if (!file) return;
  const form = new FormData();
  // The fields before the file: the facade streams the file on as it arrives.
  if ($("job-name").value) form.append("name", $("job-name").value);
  form.append("file", file);
  upload = { state: "uploading", job_id: null, error: null };
  $("job-submit").disabled = true;
  $("job-upload-status").textContent = `uploading ${file.name}…`;
  showError("");
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
  const { play: playId, cancel, delete: remove } = target.dataset;
  try {
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
    jobs: jobs.map(({ job_id, name, state, progress, step, eta_seconds }) => ({
      job_id,
      name,
      state,
      progress,
      step,
      eta_seconds: eta_seconds ?? null,
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
  };
}

window.spotonJobs = { version: 1, state, refresh };

$("job-upload").addEventListener("submit", submit);
$("job-list").addEventListener("click", (event) => {
  if (event.target instanceof HTMLButtonElement) act(event.target);
});
poll();
