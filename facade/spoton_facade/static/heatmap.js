// The task's heatmap: where people spent time, as the service renders it (a PNG of track points
// per 0.5 m cell over the floor plan, /api/v1/analytics/heatmap). Loaded when the task ends and
// on Refresh, so a running task can be looked at too.
//
// Until a picture has loaded the panel says why there is none; the <img> goes into the page
// only with a picture in it (an empty one would show its alt text and a broken-image frame).

export const CELL_SIZE_M = 0.5;
const NO_TASK = "No heatmap yet: it appears when a task ends (or press Refresh while one runs).";

export class HeatmapView {
  /**
   * @param {HTMLElement} panel where the picture, or the words saying why there is none, go
   * @param {HTMLButtonElement} refresh
   */
  constructor(panel, refresh) {
    this.panel = panel;
    this.refresh = refresh;
    this.task = null;
    this.loads = 0;
    this.error = null;
    this.image = null;
    refresh.addEventListener("click", () => this.load());
    this._say(NO_TASK);
  }

  /** Follow ``taskId`` over ``environmentId``; nothing is fetched until load(). */
  setTask(environmentId, taskId) {
    this.task = environmentId && taskId ? { environmentId, taskId } : null;
    this.refresh.disabled = this.task === null;
    this.image = null;
    this.error = null;
    this._say(NO_TASK);
  }

  load() {
    if (this.task === null) return;
    const query = new URLSearchParams({
      environment_id: this.task.environmentId,
      task_id: this.task.taskId,
      cell_size_m: String(CELL_SIZE_M),
      format: "png",
      // The picture changes while the task runs; a new URL skips the browser's cache.
      t: String(Date.now()),
    });
    const task = this.task;
    const image = new Image();
    image.alt = "Where people spent time in this task";
    image.addEventListener("load", () => {
      if (this.task !== task) return; // another task is followed since
      this.loads += 1;
      this.error = null;
      this.image = image;
      this.panel.replaceChildren(image);
    });
    image.addEventListener("error", () => {
      if (this.task !== task) return;
      this.error = "no heatmap";
      // A picture already shown stays; else say why there is none.
      if (!this.image) this._say("No heatmap for this task yet: no one has been placed on the map.");
    });
    image.src = `/api/v1/analytics/heatmap?${query}`;
  }

  state() {
    return {
      task_id: this.task?.taskId ?? null,
      loads: this.loads,
      shown: this.image !== null,
      error: this.error,
      images_in_page: this.panel.querySelectorAll("img").length,
      placeholder: this.image ? null : this.panel.textContent,
    };
  }

  _say(text) {
    const words = document.createElement("p");
    words.className = "muted";
    words.textContent = text;
    this.panel.replaceChildren(words);
  }
}
