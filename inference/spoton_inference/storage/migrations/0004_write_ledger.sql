-- Exactly-once track-point writes. The writer gives every batch an id when it forms it and
-- commits the id here in the same transaction as the batch's rows (plain COPY into
-- track_points): an id already present means the batch is in, its acknowledgement was lost,
-- and a retry or a journal replay must skip it. One small row per batch (thousands of points).
CREATE TABLE track_point_batches (
    batch_id   uuid PRIMARY KEY,
    row_count  integer NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
