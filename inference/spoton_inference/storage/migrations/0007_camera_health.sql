-- Camera health checks: one row per probe of a live camera; its status is the newest row.
-- status: online (frames at >= 50% of the expected rate), degraded (connected, but slow or
-- failing to decode), offline (unreachable). Rows older than SPOTON_CAMERA_HEALTH_RETENTION_DAYS
-- are deleted by the health loop. No foreign key: history outlives a deleted camera until pruned.
CREATE TABLE camera_health_checks (
    environment_id text NOT NULL,
    camera_id      text NOT NULL,
    checked_at     timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL CHECK (status IN ('online', 'offline', 'degraded')),
    -- time to the first frame; null when none came
    latency_ms     double precision,
    fps            double precision NOT NULL DEFAULT 0,
    width          integer NOT NULL DEFAULT 0,
    height         integer NOT NULL DEFAULT 0,
    -- why not online, credentials masked; '' when online
    error          text NOT NULL DEFAULT ''
);
CREATE INDEX camera_health_checks_camera_idx
    ON camera_health_checks (environment_id, camera_id, checked_at DESC);
CREATE INDEX camera_health_checks_checked_at_idx ON camera_health_checks (checked_at);
