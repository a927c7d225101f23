-- Events are written at least once: a write retried after its commit's acknowledgement was
-- lost, or a task resumed after a restart that emits an event again. The key names the event
-- (kind, camera, person, frame, zone) so that the second write is skipped. Older rows have no
-- key; NULLs never conflict.
ALTER TABLE events ADD COLUMN event_key text;
CREATE UNIQUE INDEX events_task_event_key_idx ON events (task_id, event_key);
