-- History for analytics: identities, events and zones. Applied once, in a transaction, by
-- migrate.py, which then runs storage/partitioning.py's hook for this version: it turns
-- track_points into a TimescaleDB hypertable when the server has the extension, else into a
-- table range-partitioned by day (existing rows kept either way).

-- Every global identity a task produced: first and last seen (video time), from its track points.
CREATE TABLE identities (
    task_id        uuid NOT NULL,
    environment_id text NOT NULL,
    global_id      integer NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    last_camera_id text NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, global_id)
);
CREATE INDEX identities_environment_idx ON identities (environment_id, last_seen);

-- What happened to whom, where: appear/leave a camera, hand-overs between cameras, zone entry/exit.
CREATE TABLE events (
    time               timestamptz NOT NULL,
    task_id            uuid,
    environment_id     text NOT NULL,
    camera_id          text,
    global_id          integer,
    kind               text NOT NULL
                       CHECK (kind IN ('appear', 'leave', 'handover', 'zone_enter', 'zone_exit')),
    global_frame_index bigint,
    payload            jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_environment_idx ON events (environment_id, time);
CREATE INDEX events_task_idx ON events (task_id, global_frame_index);

-- Areas of the floor plan, in map metres. PostgreSQL's own polygon type (no PostGIS needed)
-- lets counts and dwell test `point(map_x, map_y) <@ polygon` in SQL.
CREATE TABLE zones (
    environment_id text NOT NULL REFERENCES environments ON DELETE CASCADE,
    zone_id        text NOT NULL,
    name           text NOT NULL,
    polygon        polygon NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, zone_id)
);
