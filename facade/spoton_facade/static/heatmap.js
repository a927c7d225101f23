// The task's heatmap: where people spent time, as the service renders it (a PNG of track points
// per 0.5 m cell over the floor plan, /api/v1/analytics/heatmap). Loaded when the task ends and
// on Refresh, so a running task can be looked at too.

export const CELL_SIZE_M = 0.5;

export class HeatmapView {
  /**
   * @param {HTMLImageElement} image
   * @param {HTMLButtonElement} refresh
   */
  constructor(image, refresh) {
    this.image = image;
    this.refresh = refresh;
    this.task = null;
    this.loads = 0;
    this.error = null;
    refresh.addEventListener("click", () => this.load());
    image.addEventListener("load", () => {
      this.loads += 1;
      this.error = null;
      image.hidden = false;
    });
    image.addEventListener("error", () => {
      this.error = "no heatmap";
      image.hidden = true;
    });
  }

  /** Follow ``taskId`` over ``environmentId``; nothing is fetched until load(). */
  setTask(environmentId, taskId) {
    this.task = environmentId && taskId ? { environmentId, taskId } : null;
    this.refresh.disabled = this.task === null;
    this.image.hidden = true;
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
    this.image.src = `/api/v1/analytics/heatmap?${query}`;
  }

  state() {
    return { task_id: this.task?.taskId ?? null, loads: this.loads, shown: !this.image.hidden, error: this.error };
  }
}
