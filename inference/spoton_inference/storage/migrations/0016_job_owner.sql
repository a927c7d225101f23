-- The replica running a job (storage/replicas.py replica_id), set by the very claim that moves
-- it to running; '' for jobs claimed before owners were recorded. Replicas share the jobs
-- table: a replica requeues only the running jobs it owns or whose owner's lease lapsed, and a
-- run's writes are conditional on its claim (owner and attempt), so one that lost it changes nothing.
ALTER TABLE jobs ADD COLUMN owner text NOT NULL DEFAULT '';
-- Start-up and every sweep read the running jobs.
CREATE INDEX jobs_running_idx ON jobs (owner) WHERE state = 'running';
