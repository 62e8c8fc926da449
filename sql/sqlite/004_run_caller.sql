-- 004_run_caller (SQLite): who really started a run, and which systemd job a pending row is for.
-- caller_uid/caller_name: the bus credentials of a RunTask caller, or the user running the CLI;
-- NULL for timer starts. triggered_by_user stays what the caller claimed (an email note).
-- systemd_job_id: the start job the daemon queued for this row; a runner adopts a pending row
-- only when it runs under that very job.
ALTER TABLE scheduler_logs ADD COLUMN caller_uid INTEGER;
ALTER TABLE scheduler_logs ADD COLUMN caller_name TEXT;
ALTER TABLE scheduler_logs ADD COLUMN systemd_job_id INTEGER;
