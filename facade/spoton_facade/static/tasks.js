// The task list: the tasks the API lists (GET /api/v1/processing-tasks, a page at a time,
// filtered by state and environment), with state and progress, and Open to follow one again:
// the page replays its events from the start into the views.
//
// Loaded on demand (page load, Refresh, a filter change, a task started or cancelled), never
// polled; the followed task's row moves with its own status_update events.

import { getJson } from "./http.js";

export const PAGE_SIZE = 20;

export class TaskList {
  /**
   * @param {{table: HTMLTableElement, more: HTMLButtonElement, refresh: HTMLButtonElement,
   *          state: HTMLSelectElement, here: HTMLInputElement}} elements
   *   here: only the chosen environment's tasks
   * @param {(taskId: string) => void} onOpen
   * @param {(message: string) => void} onError
   */
  constructor(elements, onOpen, onError) {
    this.elements = elements;
    this.onError = onError;
    this.tasks = [];
    this.nextPageToken = "";
    this.loads = 0;
    this.environmentId = "";
    this.followed = null;
    elements.more.addEventListener("click", () => this.load(this.nextPageToken));
    elements.refresh.addEventListener("click", () => this.load());
    elements.state.addEventListener("change", () => this.load());
    elements.here.addEventListener("change", () => this.load());
    elements.table.addEventListener("click", (event) => {
      const open = event.target instanceof HTMLButtonElement && event.target.dataset.open;
      if (open) onOpen(open);
    });
  }

  /** The environment chosen in the picker (the "this environment only" filter). */
  setEnvironment(environmentId) {
    this.environmentId = environmentId;
    if (this.elements.here.checked) this.load();
  }

  /** The task the views follow, marked in the list. */
  setFollowed(taskId) {
    this.followed = taskId;
    this._render();
  }

  /** The first page again, or the page after ``pageToken``, appended. */
  async load(pageToken = "") {
    const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
    if (pageToken) query.set("page_token", pageToken);
    if (this.elements.state.value) query.set("state", this.elements.state.value);
    if (this.elements.here.checked && this.environmentId) query.set("environment_id", this.environmentId);
    try {
      const page = await getJson(`/api/v1/processing-tasks?${query}`);
      this.tasks = pageToken ? [...this.tasks, ...page.tasks] : page.tasks;
      this.nextPageToken = page.next_page_token;
      this.loads += 1;
      this._render();
    } catch (error) {
      this.onError(`Tasks: ${error.message}`);
    }
  }

  /** A task's latest figures (its status_update, or a control's answer): its row moves. */
  update(task) {
    const row = this.tasks.find((t) => t.task_id === task.task_id);
    if (!row) return;
    for (const key of ["state", "progress", "step", "error"]) if (key in task) row[key] = task[key];
    this._render();
  }

  state() {
    return {
      tasks: this.tasks.map(({ task_id, environment_id, state, progress }) => ({
        task_id,
        environment_id,
        state,
        progress,
      })),
      next_page_token: this.nextPageToken,
      loads: this.loads,
    };
  }

  _render() {
    const rows = this.tasks.map((task) => {
      const row = document.createElement("tr");
      row.dataset.task = task.task_id;
      if (task.task_id === this.followed) row.className = "followed";
      const progress = document.createElement("progress");
      progress.max = 1;
      progress.value = task.progress;
      const open = document.createElement("button");
      open.textContent = task.task_id === this.followed ? "Replay" : "Open";
      open.dataset.open = task.task_id;
      const created = task.created_at ? new Date(task.created_at).toLocaleString() : "";
      const state = task.error ? `${task.state}: ${task.error}` : task.state;
      const cells = [task.task_id.slice(0, 8), task.environment_id, state, progress, created, open];
      row.append(
        ...cells.map((content) => {
          const cell = document.createElement("td");
          cell.append(content);
          return cell;
        }),
      );
      row.cells[0].title = task.task_id;
      return row;
    });
    this.elements.table.tBodies[0].replaceChildren(...rows);
    this.elements.more.hidden = !this.nextPageToken;
  }
}
