-- The audit log: who did what (credential use, task and job control, catalogue changes).
-- Rows name the actor and the target by id only, never a secret. Appended by core/audit.py,
-- read newest first by AuthService.ListAuditEvents; rows past SPOTON_AUDIT_RETENTION_DAYS go.
CREATE TABLE audit_events (
    event_id      bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    -- the principal: an API key's or user's name, its kind (api_key, token, system), the
    -- credential's id and the role it acted with
    actor         text NOT NULL,
    actor_kind    text NOT NULL,
    credential_id text NOT NULL,
    role          text NOT NULL,
    -- e.g. task.start, job.cancel, camera.update, auth.login
    action        text NOT NULL,
    -- what it acted on, e.g. task/<id>, environment/<id>/camera/<id>
    target        text NOT NULL,
    -- ok, or failed: <error kind>
    outcome       text NOT NULL
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, event_id);
CREATE INDEX audit_events_action_idx ON audit_events (action, event_id);
