// The task's controls: Pause, Resume and Cancel act on the task through the API
// (POST /api/v1/processing-tasks/{id}/control), and the players follow the task's state: a
// paused task holds them, a resumed one lets them go on. Once the task is over there is nothing
// left to control, and Pause and Resume hold and release its playback only.
//
// Focus: a click on a box or a map dot focuses that person (action "focus" with its global id;
// 0 clears). The service announces it as a focus_update event, which is what highlights it, so
// every dashboard on the task shows the same focus. A finished task cannot be controlled, so
// there the focus is this page's alone.

import { ApiError, getJson, postJson } from "./http.js";

export const TERMINAL_STATES = new Set(["completed", "failed", "cancelled"]);
const PAUSABLE_STATES = new Set(["queued", "preparing", "processing"]);

export class TaskControls {
  /**
   * @param {{pause: HTMLButtonElement, resume: HTMLButtonElement, cancel: HTMLButtonElement,
   *          clearFocus: HTMLButtonElement, focus: HTMLElement}} elements
   * @param {{players: (paused: boolean) => void, focus: (globalId: number) => void,
   *          error: (message: string) => void, task: (task: object) => void}} hooks
   *   players: hold or release the videos; focus: highlight a person; error: say what failed;
   *   task: the task as a control answered it
   */
  constructor(elements, hooks) {
    this.elements = elements;
    this.hooks = hooks;
    this.actions = [];
    elements.pause.addEventListener("click", () => this.pause());
    elements.resume.addEventListener("click", () => this.resume());
    elements.cancel.addEventListener("click", () => this.cancel());
    elements.clearFocus.addEventListener("click", () => this.focusOn(0));
    this.follow(null);
  }

  /** A new task is followed (null: none). */
  follow(taskId) {
    this.taskId = taskId;
    this.taskState = null;
    // The event sequence the state is as of: a control's answer is newer than the events
    // still on their way, which must not undo it.
    this.sequence = 0;
    this.playbackPaused = false;
    this.busy = false;
    this._focus(0);
    this._apply();
  }

  /** The task's state as of event ``sequence``, from its events or a control's answer;
   * returns whether it was newer than what was known. */
  setState(state, sequence) {
    if (sequence < this.sequence) return false;
    this.sequence = sequence;
    this.taskState = state;
    this._apply();
    return true;
  }

  /** A focus_update event. */
  focusUpdate(globalId) {
    this._focus(globalId);
  }

  async pause() {
    if (this._over()) {
      this.playbackPaused = true;
      this._apply();
      return;
    }
    await this._control("pause");
  }

  async resume() {
    if (this._over()) {
      this.playbackPaused = false;
      this._apply();
      return;
    }
    await this._control("resume");
  }

  async cancel() {
    await this._control("cancel");
  }

  /** Focus on ``globalId`` (0: clear). */
  async focusOn(globalId) {
    if (!this.taskId) return;
    if (this._over()) {
      this._focus(globalId);
      return;
    }
    const task = await this._control("focus", globalId);
    // The focus_update event follows; the answer already says it.
    if (task) this._focus(task.focus_global_id ?? globalId);
  }

  state() {
    const { pause, resume, cancel, clearFocus } = this.elements;
    return {
      task_paused: this.taskState === "paused",
      playback_paused: this.playbackPaused,
      focus: this.focusId,
      enabled: {
        pause: !pause.disabled,
        resume: !resume.disabled,
        cancel: !cancel.disabled,
        clear_focus: !clearFocus.disabled,
      },
      actions: this.actions.map((a) => ({ ...a })),
    };
  }

  _over() {
    return TERMINAL_STATES.has(this.taskState);
  }

  async _control(action, globalId = 0) {
    const taskId = this.taskId;
    if (!taskId) return null;
    this.busy = true;
    this._apply();
    const record = { action, global_id: globalId, status: null, state: null };
    this.actions.push(record);
    try {
      const task = await postJson(`/api/v1/processing-tasks/${encodeURIComponent(taskId)}/control`, {
        action,
        global_id: globalId,
      });
      Object.assign(record, { status: 200, state: task.state });
      if (this.taskId === taskId && this.setState(task.state, task.last_sequence)) this.hooks.task(task);
      return task;
    } catch (error) {
      record.status = error instanceof ApiError ? error.status : 0;
      if (this.taskId !== taskId) return null;
      if (error instanceof ApiError && error.status === 409) {
        // The task moved on meanwhile (it ended, say): show it as it is now.
        const task = await getJson(`/api/v1/processing-tasks/${encodeURIComponent(taskId)}/status`).catch(() => null);
        if (task && this.taskId === taskId) {
          if (this.setState(task.state, task.last_sequence)) this.hooks.task(task);
          // Pausing a task that has just ended still means: stop the pictures.
          if (action === "pause" && this._over()) this.pause();
        }
      }
      this.hooks.error(`${action}: ${error.message}`);
      return null;
    } finally {
      if (this.taskId === taskId) {
        this.busy = false;
        this._apply();
      }
    }
  }

  _focus(globalId) {
    this.focusId = globalId;
    this.hooks.focus(globalId);
    this.elements.focus.textContent = globalId ? `focus on #${globalId}` : "";
    this.elements.clearFocus.disabled = !globalId || !this.taskId;
  }

  // Buttons and players as the task's state says.
  _apply() {
    const { pause, resume, cancel } = this.elements;
    const none = !this.taskId || this.busy;
    const over = this._over();
    pause.disabled = none || (over ? this.playbackPaused : !PAUSABLE_STATES.has(this.taskState));
    resume.disabled = none || (over ? !this.playbackPaused : this.taskState !== "paused");
    cancel.disabled = none || over || this.taskState === null;
    pause.title = over ? "Pause the playback (the task is over)" : "Pause the task; the videos follow";
    resume.title = over ? "Resume the playback" : "Resume the task; the videos follow";
    this.hooks.players(over ? this.playbackPaused : this.taskState === "paused");
  }
}
