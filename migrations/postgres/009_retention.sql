-- Retention (PruneFinished): the finished jobs of each side, by status and
-- the time of their last change, so that the cleaner finds the oldest
-- ones of a status past its cutoff with one index range scan, however
-- many jobs are still live. Partial: a live job has no entry here, so the
-- index costs one entry per job, written when it finishes, and shrinks
-- as the cleaner deletes.

-- +goose Up
CREATE INDEX idx_job_state_finished ON scheduler.job_state (status, updated_at)
    WHERE status IN ('succeeded', 'cancelled', 'failed');
CREATE INDEX idx_jobs_finished ON scheduler.jobs (status, updated_at)
    WHERE status IN ('succeeded', 'cancelled', 'failed');

-- +goose Down
DROP INDEX scheduler.idx_jobs_finished;
DROP INDEX scheduler.idx_job_state_finished;
