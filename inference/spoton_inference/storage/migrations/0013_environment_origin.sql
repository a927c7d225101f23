-- Who made an environment: 'site' (a user) or 'job' (JobService, one per uploaded video).
ALTER TABLE environments ADD COLUMN origin text NOT NULL DEFAULT 'site'
    CHECK (origin IN ('site', 'job'));
-- Environments made before this column: a job's is the one its row names.
UPDATE environments SET origin = 'job' WHERE environment_id IN (SELECT environment_id FROM jobs);

-- StartTask looks for an unfinished task over the environment before it inserts one.
CREATE INDEX tasks_unfinished_idx ON tasks (environment_id, created_at)
    WHERE state IN ('queued', 'preparing', 'processing', 'paused');
