// A task's event stream (text/event-stream), resumed with Last-Event-ID and exponential back-off.
//
// This reads the stream with fetch() rather than EventSource: EventSource retries at a fixed
// interval, gives up for good on any non-200 answer (a facade restarting answers 503), and a
// new EventSource cannot send Last-Event-ID. Here every reconnect sends the last `id:` seen as
// the Last-Event-ID header, so the facade resumes right after it and no event is lost or
// repeated; the wait between tries doubles from RETRY_MIN_MS up to RETRY_MAX_MS and starts
// again once a connection delivers something.
//
// The parser follows the HTML standard's event-stream rules: `event:`, `data:` (joined with
// newlines), `id:`, comments (`: heartbeat`) ignored, a blank line dispatches; an id-only
// block advances the resume point without dispatching.

import { loginIfUnauthorized } from "./http.js";

export const RETRY_MIN_MS = 500;
export const RETRY_MAX_MS = 15000;

// Answers that no retry can fix: the task or the resume point is gone, or we are not allowed.
const FATAL_STATUSES = new Set([400, 401, 403, 404, 410]);

export class TaskEventSource {
  /**
   * @param {string} url the task's events_url
   * @param {object} handlers
   * @param {(type: string, data: object, id: number) => void} handlers.onEvent every dispatched event
   * @param {(state: string, detail?: string) => void} [handlers.onState]
   *   "connecting", "open", "retrying" (detail: the wait), "ended" (the task is over), "failed" (detail)
   * @param {number} [lastEventId] resume after this sequence (0: from the start)
   */
  constructor(url, { onEvent, onState = () => {} }, lastEventId = 0) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastEventId = lastEventId;
    this.connections = 0;
    this.reconnects = 0;
    // Sequence numbers are gap-free per task; a jump means an event was lost.
    this.gaps = 0;
    this.connected = false;
    this.closed = false;
    this.retryMs = RETRY_MIN_MS;
    this._abort = null;
    this._run();
  }

  /** Stop for good (the task is over, or another task is followed). */
  close() {
    this.closed = true;
    this._abort?.abort();
  }

  /** Drop the current connection as a network failure would; it reconnects and resumes. */
  dropConnection() {
    this._abort?.abort();
  }

  async _run() {
    while (!this.closed) {
      let delivered = false;
      this._abort = new AbortController();
      this.onState("connecting");
      try {
        const headers = { Accept: "text/event-stream" };
        if (this.lastEventId > 0) headers["Last-Event-ID"] = String(this.lastEventId);
        const response = await fetch(this.url, { headers, cache: "no-store", signal: this._abort.signal });
        if (response.status === 204) {
          // The task is over and nothing follows the resume point.
          this.onState("ended");
          return;
        }
        if (!response.ok) {
          loginIfUnauthorized(response);
          const problem = await response.json().catch(() => ({}));
          const detail = problem.detail || problem.title || `HTTP ${response.status}`;
          if (FATAL_STATUSES.has(response.status)) {
            this.onState("failed", detail);
            return;
          }
          throw new Error(detail);
        }
        this.connections += 1;
        if (this.connections > 1) this.reconnects += 1;
        this.connected = true;
        this.onState("open");
        delivered = await this._read(response.body);
      } catch (error) {
        if (this.closed) return;
        this._lastError = error?.message ?? String(error);
      } finally {
        this.connected = false;
      }
      if (this.closed) return;
      if (delivered) this.retryMs = RETRY_MIN_MS;
      // A little jitter, so that many dashboards do not come back at the same instant.
      const wait = Math.round(this.retryMs * (0.8 + 0.4 * Math.random()));
      this.onState("retrying", `${wait} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }

  // Reads blocks until the stream ends; true if at least one block arrived.
  async _read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let block = { event: "", data: [], id: null };
    let delivered = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return delivered;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      // The last piece may be a line cut in two (a lone "\r" too: its "\n" may follow).
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          delivered = this._dispatch(block) || delivered;
          block = { event: "", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) {
          delivered = true; // a heartbeat: the connection is alive
          continue;
        }
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") block.event = value;
        else if (field === "data") block.data.push(value);
        else if (field === "id" && !value.includes("\0")) block.id = value;
      }
    }
  }

  _dispatch(block) {
    if (block.id !== null && /^\d+$/.test(block.id)) {
      const id = Number(block.id);
      if (id > this.lastEventId + 1) this.gaps += id - this.lastEventId - 1;
      if (id > this.lastEventId) this.lastEventId = id;
    }
    if (block.data.length === 0) return block.id !== null;
    let data;
    try {
      data = JSON.parse(block.data.join("\n"));
    } catch {
      return true; // not ours to understand; the id (if any) still counted
    }
    this.onEvent(block.event || "message", data, this.lastEventId);
    return true;
  }
}
