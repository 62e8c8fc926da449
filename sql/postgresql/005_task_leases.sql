-- 005_task_leases (PostgreSQL): the cross-host exclusion of every task. One row per task while a
-- run holds it: the holder's host and run id, when it took it, and until when it holds it. The
-- runner renews expires_at while the run lives and deletes the row when it ends; a row whose
-- expires_at has passed belongs to a dead holder and may be taken over. Taken, renewed and
-- released in short transactions on the server's clock, so it works through a transaction
-- pooler and whatever the hosts' clocks say.
CREATE TABLE IF NOT EXISTS task_leases (
    task_name   TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
