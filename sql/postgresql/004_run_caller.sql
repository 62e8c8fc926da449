-- 004_run_caller (PostgreSQL): same columns as sql/sqlite/004_run_caller.sql (uids are
-- unsigned 32-bit: BIGINT holds every one).
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS caller_uid BIGINT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS caller_name TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS systemd_job_id BIGINT;
