-- The camera registry: groups of cameras per environment, and each camera's source,
-- detection threshold, location and enabled flag.
CREATE TABLE camera_groups (
    environment_id text NOT NULL REFERENCES environments ON DELETE CASCADE,
    group_id       text NOT NULL,
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, group_id)
);

ALTER TABLE cameras
    ADD COLUMN group_id            text,
    -- file, rtsp, http or push
    ADD COLUMN source_kind         text NOT NULL DEFAULT 'push'
        CHECK (source_kind IN ('file', 'rtsp', 'http', 'push')),
    -- without credentials; those are the next two columns
    ADD COLUMN source_url          text NOT NULL DEFAULT '',
    ADD COLUMN source_username     text NOT NULL DEFAULT '',
    -- never returned by the API nor logged; '' when none
    ADD COLUMN source_password     text NOT NULL DEFAULT '',
    -- null: the server default
    ADD COLUMN detection_threshold double precision
        CHECK (detection_threshold >= 0 AND detection_threshold <= 1),
    ADD COLUMN location            text NOT NULL DEFAULT '',
    ADD COLUMN enabled             boolean NOT NULL DEFAULT true,
    -- Deleting a group takes its cameras out of any group; the cameras stay.
    ADD FOREIGN KEY (environment_id, group_id) REFERENCES camera_groups ON DELETE SET NULL (group_id);

-- Cameras from before the registry: those with sub-videos read files, the others are pushed to.
UPDATE cameras SET source_kind = 'file' WHERE sub_videos <> '[]'::jsonb;
