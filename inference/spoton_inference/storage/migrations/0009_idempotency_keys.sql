-- Idempotency keys of StartTask and UploadJob: a retry with a key already used answers what
-- the first request created. A key is claimed in the same transaction that creates its task;
-- an upload reserves its key first (task_id and job_id null) and records the job in the
-- transaction that creates it. Rows older than SPOTON_IDEMPOTENCY_KEY_TTL_S are forgotten, and
-- deleting the task or job forgets its key.
CREATE TABLE idempotency_keys (
    -- start_task, upload_job
    operation    text NOT NULL,
    key          text NOT NULL,
    -- sha256 of the request without its key: the same key with another request is refused
    request_hash text NOT NULL,
    -- who holds the key while its request runs
    reservation  uuid NOT NULL,
    task_id      uuid REFERENCES tasks (task_id) ON DELETE CASCADE,
    job_id       uuid REFERENCES jobs (job_id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operation, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
