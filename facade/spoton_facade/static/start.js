// Starting a task, one per environment: the service refuses a second task on an environment
// whose task is not over (409, the running task in the problem's `task_id`). The page then
// offers to open that task, or to start another beside it (allow_concurrent) when the user
// asks for that explicitly.

import { ApiError, postJson } from "./http.js";

/**
 * Start a task on ``environmentId``. Answers { started } (the API's TaskStarted) or
 * { running: task_id } when the environment already has a task going.
 */
export async function startTask(environmentId, allowConcurrent = false) {
  const body = { environment_id: environmentId };
  if (allowConcurrent) body.allow_concurrent = true;
  try {
    return { started: await postJson("/api/v1/processing-tasks/start", body) };
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.problem.task_id) {
      return { running: error.problem.task_id };
    }
    throw error;
  }
}

/** The offer shown when an environment already has a running task. */
export class RunningOffer {
  /**
   * @param {{panel: HTMLElement, text: HTMLElement, open: HTMLButtonElement,
   *          another: HTMLButtonElement, dismiss: HTMLButtonElement}} elements
   * @param {{open: (taskId: string) => void, another: (environmentId: string) => void}} choices
   */
  constructor(elements, choices) {
    this.elements = elements;
    this.offer = null;
    elements.open.addEventListener("click", () => this._choose(() => choices.open(this.offer.task_id)));
    elements.another.addEventListener("click", () => this._choose(() => choices.another(this.offer.environment_id)));
    elements.dismiss.addEventListener("click", () => this._choose(() => {}));
  }

  show(environmentId, taskId) {
    this.offer = { environment_id: environmentId, task_id: taskId };
    this.elements.text.textContent = `Environment ${environmentId} already has a task running (${taskId}).`;
    this.elements.panel.hidden = false;
  }

  hide() {
    this.offer = null;
    this.elements.panel.hidden = true;
  }

  state() {
    return this.offer ? { ...this.offer } : null;
  }

  _choose(action) {
    if (!this.offer) return;
    action();
    this.hide();
  }
}
