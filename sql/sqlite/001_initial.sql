-- 001_initial (SQLite): run history, the Gazelle mirror, sync state and the alert ledger.
-- Timestamps are UTC ISO-8601 text ("2026-11-24T10:00:00.000000Z"), fixed width so they sort.
-- Columns written by sync come from the API; local_* columns belong to people and sync never
-- writes them.

CREATE TABLE IF NOT EXISTS scheduler_logs (
    id                TEXT PRIMARY KEY,
    task_name         TEXT NOT NULL,
    task_label        TEXT,
    started_at        TEXT NOT NULL,
    completed_at      TEXT,
    duration_seconds  INTEGER,
    status            TEXT NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'success', 'warning', 'error', 'skipped')),
    message           TEXT,
    stats             TEXT NOT NULL DEFAULT '{}',
    triggered_by      TEXT NOT NULL DEFAULT 'scheduler'
                      CHECK (triggered_by IN ('scheduler', 'manual', 'api', 'cli')),
    triggered_by_user TEXT,
    created_at        TEXT NOT NULL,
    invocation_id     TEXT,
    host              TEXT,
    pid               INTEGER
);
CREATE INDEX IF NOT EXISTS scheduler_logs_started_at ON scheduler_logs (started_at DESC);
CREATE INDEX IF NOT EXISTS scheduler_logs_task_started_at ON scheduler_logs (task_name, started_at DESC);
CREATE INDEX IF NOT EXISTS scheduler_logs_running ON scheduler_logs (task_name) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS gazelle_clients (
    external_id             TEXT PRIMARY KEY,
    company_name            TEXT,
    status                  TEXT,
    tags                    TEXT,
    personal_notes          TEXT,
    preference_notes        TEXT,
    client_type             TEXT,
    preferred_technician_id TEXT,
    locale                  TEXT,
    created_at              TEXT,
    updated_at              TEXT,
    synced_at               TEXT NOT NULL,
    deleted_at              TEXT,
    local_tags              TEXT,
    local_flags             TEXT
);

CREATE TABLE IF NOT EXISTS gazelle_contacts (
    external_id        TEXT PRIMARY KEY,
    client_external_id TEXT,
    is_default         INTEGER NOT NULL DEFAULT 1,
    first_name         TEXT,
    last_name          TEXT,
    title              TEXT,
    wants_email        INTEGER,
    wants_phone        INTEGER,
    wants_text         INTEGER,
    email              TEXT,
    phone              TEXT,
    street1            TEXT,
    street2            TEXT,
    municipality       TEXT,
    postal_code        TEXT,
    region             TEXT,
    synced_at          TEXT NOT NULL,
    deleted_at         TEXT
);
CREATE INDEX IF NOT EXISTS gazelle_contacts_client ON gazelle_contacts (client_external_id);

CREATE TABLE IF NOT EXISTS gazelle_pianos (
    external_id                   TEXT PRIMARY KEY,
    client_external_id            TEXT,
    make                          TEXT,
    model                         TEXT,
    serial_number                 TEXT,
    type                          TEXT,
    year                          INTEGER,
    location                      TEXT,
    notes                         TEXT,
    status                        TEXT,
    size                          TEXT,
    case_color                    TEXT,
    case_finish                   TEXT,
    service_interval_months       INTEGER,
    calculated_last_service       TEXT,
    calculated_next_service       TEXT,
    dampp_chaser_installed        INTEGER,
    dampp_chaser_humidistat_model TEXT,
    dampp_chaser_mfg_date         TEXT,
    created_at                    TEXT,
    updated_at                    TEXT,
    synced_at                     TEXT NOT NULL,
    deleted_at                    TEXT,
    local_tags                    TEXT,
    local_flags                   TEXT
);
CREATE INDEX IF NOT EXISTS gazelle_pianos_client ON gazelle_pianos (client_external_id);

-- type is stored raw: a CHECK on it once emptied the old report for five days.
CREATE TABLE IF NOT EXISTS gazelle_timeline_entries (
    external_id           TEXT PRIMARY KEY,
    occurred_at           TEXT,
    type                  TEXT,
    summary               TEXT,
    comment               TEXT,
    client_external_id    TEXT,
    piano_external_id     TEXT,
    invoice_external_id   TEXT,
    estimate_external_id  TEXT,
    user_external_id      TEXT,
    synced_at             TEXT NOT NULL,
    deleted_at            TEXT
);
CREATE INDEX IF NOT EXISTS gazelle_timeline_occurred ON gazelle_timeline_entries (occurred_at);
CREATE INDEX IF NOT EXISTS gazelle_timeline_client_type ON gazelle_timeline_entries (client_external_id, type, occurred_at);
CREATE INDEX IF NOT EXISTS gazelle_timeline_piano ON gazelle_timeline_entries (piano_external_id, occurred_at);

CREATE TABLE IF NOT EXISTS gazelle_appointments (
    external_id            TEXT PRIMARY KEY,
    title                  TEXT,
    start_at               TEXT,
    duration_minutes       INTEGER,
    is_all_day             INTEGER,
    notes                  TEXT,
    type                   TEXT,
    status                 TEXT,
    confirmed_by_client    INTEGER,
    confirmed_at           TEXT,
    source                 TEXT,
    travel_mode            TEXT,
    created_at             TEXT,
    updated_at             TEXT,
    client_external_id     TEXT,
    user_external_id       TEXT,
    created_by_external_id TEXT,
    piano_external_ids     TEXT,
    synced_at              TEXT NOT NULL,
    deleted_at             TEXT
);
CREATE INDEX IF NOT EXISTS gazelle_appointments_start ON gazelle_appointments (start_at);
CREATE INDEX IF NOT EXISTS gazelle_appointments_user_start ON gazelle_appointments (user_external_id, start_at);

CREATE TABLE IF NOT EXISTS gazelle_users (
    external_id TEXT PRIMARY KEY,
    first_name  TEXT,
    last_name   TEXT,
    synced_at   TEXT NOT NULL
);

-- One row per synced entity: where the incremental pass resumes, and when a full pass last
-- completed (deletions are only inferred from a completed pass).
CREATE TABLE IF NOT EXISTS sync_state (
    entity           TEXT PRIMARY KEY,
    high_water_mark  TEXT,
    last_complete_at TEXT,
    last_run_id      TEXT,
    updated_at       TEXT NOT NULL
);

-- At most one alert per (appointment, day, technician), across re-runs and crashes.
CREATE TABLE IF NOT EXISTS alert_ledger (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    appointment_external_id TEXT NOT NULL,
    target_date             TEXT NOT NULL,
    technician_external_id  TEXT NOT NULL,
    state                   TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    run_id                  TEXT,
    recipient               TEXT,
    transport               TEXT,
    provider_message_id     TEXT,
    error                   TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (appointment_external_id, target_date, technician_external_id)
);
CREATE INDEX IF NOT EXISTS alert_ledger_target_date ON alert_ledger (target_date, state);
