-- A job's figures per step: processing (frames_processed, frames_per_second) and rendering,
-- each with the seconds it took; kept after the job ends.
ALTER TABLE jobs
    ADD COLUMN rendering_frames_per_second double precision NOT NULL DEFAULT 0,
    ADD COLUMN frames_rendered bigint NOT NULL DEFAULT 0,
    ADD COLUMN processing_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN rendering_seconds double precision NOT NULL DEFAULT 0;
