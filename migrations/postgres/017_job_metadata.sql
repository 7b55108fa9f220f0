-- A job's metadata: string keys and values the application attaches at
-- enqueue (OpenTelemetry's trace context, for one), kept beside the job's
-- state and outside its payload, so they change neither the payload hash
-- nor the job id nor the chain. Both sides carry it, as they carry the
-- rest of a job's state. NULL: none.

-- +goose Up
ALTER TABLE scheduler.jobs ADD COLUMN metadata JSONB;
ALTER TABLE scheduler.job_state ADD COLUMN metadata JSONB;

-- +goose Down
ALTER TABLE scheduler.job_state DROP COLUMN metadata;
ALTER TABLE scheduler.jobs DROP COLUMN metadata;
