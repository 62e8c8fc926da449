-- 001_initial (PostgreSQL): same tables and column names as sql/sqlite/001_initial.sql.
-- scheduler_logs may already exist, made by the old system's
-- scripts/create_scheduler_logs_table.sql (Supabase): it is completed in place, rows kept.

CREATE TABLE IF NOT EXISTS scheduler_logs (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_name         TEXT NOT NULL,
    task_label        TEXT,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    duration_seconds  INTEGER,
    status            TEXT NOT NULL DEFAULT 'running',
    message           TEXT,
    stats             JSONB NOT NULL DEFAULT '{}'::jsonb,
    triggered_by      TEXT NOT NULL DEFAULT 'scheduler',
    triggered_by_user TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS task_label TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS completed_at TIMESTAMPTZ;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS duration_seconds INTEGER;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS message TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS stats JSONB DEFAULT '{}'::jsonb;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS triggered_by TEXT DEFAULT 'scheduler';
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS triggered_by_user TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ DEFAULT now();
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS invocation_id TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS host TEXT;
ALTER TABLE scheduler_logs ADD COLUMN IF NOT EXISTS pid INTEGER;
UPDATE scheduler_logs SET stats = '{}'::jsonb WHERE stats IS NULL;
UPDATE scheduler_logs SET triggered_by = 'scheduler' WHERE triggered_by IS NULL;
UPDATE scheduler_logs SET created_at = started_at WHERE created_at IS NULL;
ALTER TABLE scheduler_logs ALTER COLUMN stats SET DEFAULT '{}'::jsonb;
ALTER TABLE scheduler_logs ALTER COLUMN stats SET NOT NULL;
ALTER TABLE scheduler_logs ALTER COLUMN triggered_by SET NOT NULL;
ALTER TABLE scheduler_logs ALTER COLUMN created_at SET NOT NULL;

-- The old system's CHECK constraints know only success/error/running and scheduler/manual/api:
-- replace them with ours (statuses warning and skipped, trigger cli).
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'scheduler_logs'::regclass AND contype = 'c'
               AND conname NOT IN ('scheduler_logs_status_valid', 'scheduler_logs_trigger_valid')
    LOOP
        EXECUTE format('ALTER TABLE scheduler_logs DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;
ALTER TABLE scheduler_logs DROP CONSTRAINT IF EXISTS scheduler_logs_status_valid;
ALTER TABLE scheduler_logs ADD CONSTRAINT scheduler_logs_status_valid
    CHECK (status IN ('running', 'success', 'warning', 'error', 'skipped')) NOT VALID;
ALTER TABLE scheduler_logs DROP CONSTRAINT IF EXISTS scheduler_logs_trigger_valid;
ALTER TABLE scheduler_logs ADD CONSTRAINT scheduler_logs_trigger_valid
    CHECK (triggered_by IN ('scheduler', 'manual', 'api', 'cli')) NOT VALID;

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
    created_at              TIMESTAMPTZ,
    updated_at              TIMESTAMPTZ,
    synced_at               TIMESTAMPTZ NOT NULL,
    deleted_at              TIMESTAMPTZ,
    local_tags              TEXT,
    local_flags             TEXT
);

CREATE TABLE IF NOT EXISTS gazelle_contacts (
    external_id        TEXT PRIMARY KEY,
    client_external_id TEXT,
    is_default         BOOLEAN NOT NULL DEFAULT true,
    first_name         TEXT,
    last_name          TEXT,
    title              TEXT,
    wants_email        BOOLEAN,
    wants_phone        BOOLEAN,
    wants_text         BOOLEAN,
    email              TEXT,
    phone              TEXT,
    street1            TEXT,
    street2            TEXT,
    municipality       TEXT,
    postal_code        TEXT,
    region             TEXT,
    synced_at          TIMESTAMPTZ NOT NULL,
    deleted_at         TIMESTAMPTZ
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
    dampp_chaser_installed        BOOLEAN,
    dampp_chaser_humidistat_model TEXT,
    dampp_chaser_mfg_date         TEXT,
    created_at                    TIMESTAMPTZ,
    updated_at                    TIMESTAMPTZ,
    synced_at                     TIMESTAMPTZ NOT NULL,
    deleted_at                    TIMESTAMPTZ,
    local_tags                    TEXT,
    local_flags                   TEXT
);
CREATE INDEX IF NOT EXISTS gazelle_pianos_client ON gazelle_pianos (client_external_id);

CREATE TABLE IF NOT EXISTS gazelle_timeline_entries (
    external_id           TEXT PRIMARY KEY,
    occurred_at           TIMESTAMPTZ,
    type                  TEXT,
    summary               TEXT,
    comment               TEXT,
    client_external_id    TEXT,
    piano_external_id     TEXT,
    invoice_external_id   TEXT,
    estimate_external_id  TEXT,
    user_external_id      TEXT,
    synced_at             TIMESTAMPTZ NOT NULL,
    deleted_at            TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS gazelle_timeline_occurred ON gazelle_timeline_entries (occurred_at);
CREATE INDEX IF NOT EXISTS gazelle_timeline_client_type ON gazelle_timeline_entries (client_external_id, type, occurred_at);
CREATE INDEX IF NOT EXISTS gazelle_timeline_piano ON gazelle_timeline_entries (piano_external_id, occurred_at);

CREATE TABLE IF NOT EXISTS gazelle_appointments (
    external_id            TEXT PRIMARY KEY,
    title                  TEXT,
    start_at               TIMESTAMPTZ,
    duration_minutes       INTEGER,
    is_all_day             BOOLEAN,
    notes                  TEXT,
    type                   TEXT,
    status                 TEXT,
    confirmed_by_client    BOOLEAN,
    confirmed_at           TIMESTAMPTZ,
    source                 TEXT,
    travel_mode            TEXT,
    created_at             TIMESTAMPTZ,
    updated_at             TIMESTAMPTZ,
    client_external_id     TEXT,
    user_external_id       TEXT,
    created_by_external_id TEXT,
    piano_external_ids     TEXT,
    synced_at              TIMESTAMPTZ NOT NULL,
    deleted_at             TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS gazelle_appointments_start ON gazelle_appointments (start_at);
CREATE INDEX IF NOT EXISTS gazelle_appointments_user_start ON gazelle_appointments (user_external_id, start_at);

CREATE TABLE IF NOT EXISTS gazelle_users (
    external_id TEXT PRIMARY KEY,
    first_name  TEXT,
    last_name   TEXT,
    synced_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS sync_state (
    entity           TEXT PRIMARY KEY,
    high_water_mark  TIMESTAMPTZ,
    last_complete_at TIMESTAMPTZ,
    last_run_id      TEXT,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS alert_ledger (
    id                      BIGSERIAL PRIMARY KEY,
    appointment_external_id TEXT NOT NULL,
    target_date             DATE NOT NULL,
    technician_external_id  TEXT NOT NULL,
    state                   TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    run_id                  TEXT,
    recipient               TEXT,
    transport               TEXT,
    provider_message_id     TEXT,
    error                   TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    UNIQUE (appointment_external_id, target_date, technician_external_id)
);
CREATE INDEX IF NOT EXISTS alert_ledger_target_date ON alert_ledger (target_date, state);
