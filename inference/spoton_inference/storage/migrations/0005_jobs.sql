-- Jobs: uploaded videos, each run as a single-camera environment plus a task.
-- The queue is this table (state 'queued', oldest first), so it survives a restart.
CREATE TABLE jobs (
    job_id            uuid PRIMARY KEY,
    name              text NOT NULL,
    filename          text NOT NULL,
    -- queued, running, completed, failed, cancelled
    state             text NOT NULL,
    step              text NOT NULL DEFAULT '',
    error             text NOT NULL DEFAULT '',
    progress          real NOT NULL DEFAULT 0,
    -- null while not yet measured
    eta_seconds       double precision,
    frames_per_second double precision NOT NULL DEFAULT 0,
    frames_processed  bigint NOT NULL DEFAULT 0,
    total_frames      bigint NOT NULL DEFAULT 0,
    size_bytes        bigint NOT NULL,
    -- {"container", "codec", "width", "height", "fps", "duration_s", "frames"} from the decode probe
    video             jsonb NOT NULL,
    -- {"fps", "detection_threshold", "homography"} as given at upload (nulls when not given)
    options           jsonb NOT NULL,
    environment_id    text NOT NULL,
    camera_id         text NOT NULL,
    -- the task of the current (or last) attempt
    task_id           uuid,
    -- [{"kind", "name", "media_type", "size_bytes", "media_path"}] once completed
    results           jsonb NOT NULL DEFAULT '[]',
    attempts          integer NOT NULL DEFAULT 0,
    -- grows with every change; WatchJob resumes after it
    revision          bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, job_id DESC);
CREATE INDEX jobs_queue_idx ON jobs (created_at, job_id) WHERE state = 'queued';
