-- The catalogue, tasks and track history. Applied once, in a transaction, by migrate.py.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE environments (
    environment_id   text PRIMARY KEY,
    name             text NOT NULL,
    source_dir       text,
    map_image        text,
    metres_per_pixel double precision NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cameras (
    environment_id text NOT NULL REFERENCES environments ON DELETE CASCADE,
    camera_id      text NOT NULL,
    name           text NOT NULL,
    fps            double precision NOT NULL,
    width          integer NOT NULL,
    height         integer NOT NULL,
    -- {"matrix": [9 floats], "image_points": [[u,v]...], "map_points": [[x,y]...]} or null
    homography     jsonb,
    -- [{"path": "...", "num_frames": n}, ...] in batch order
    sub_videos     jsonb NOT NULL DEFAULT '[]',
    position       integer NOT NULL,
    PRIMARY KEY (environment_id, camera_id)
);

CREATE TABLE tasks (
    task_id          uuid PRIMARY KEY,
    environment_id   text NOT NULL,
    camera_ids       text[] NOT NULL,
    state            text NOT NULL,
    progress         real NOT NULL DEFAULT 0,
    step             text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    frames_processed bigint NOT NULL DEFAULT 0,
    total_frames     bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, task_id);

CREATE TABLE task_state_history (
    task_id uuid NOT NULL REFERENCES tasks ON DELETE CASCADE,
    state   text NOT NULL,
    step    text NOT NULL,
    error   text NOT NULL DEFAULT '',
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_state_history_idx ON task_state_history (task_id, at);

CREATE TABLE track_points (
    time               timestamptz NOT NULL,
    task_id            uuid NOT NULL,
    environment_id     text NOT NULL,
    camera_id          text NOT NULL,
    global_frame_index bigint NOT NULL,
    local_id           integer NOT NULL,
    global_id          integer NOT NULL,
    x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
    score              real NOT NULL,
    map_x              double precision,
    map_y              double precision
);
CREATE INDEX track_points_task_idx ON track_points (task_id, global_frame_index);
CREATE INDEX track_points_identity_idx ON track_points (environment_id, global_id, time);
