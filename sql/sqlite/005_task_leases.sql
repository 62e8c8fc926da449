-- 005_task_leases (SQLite): the cross-host exclusion of every task (a SQLite store has one host,
-- the table keeps both engines' run lifecycle the same). One row per task while a run holds it:
-- holder host and run id, when it took it, until when (UTC ISO text, compared as text).
CREATE TABLE IF NOT EXISTS task_leases (
    task_name   TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
