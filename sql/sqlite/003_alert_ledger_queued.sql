-- 003_alert_ledger_queued (SQLite): an alert written to the outbox directory is `queued`, never
-- `sent` (only a provider's acceptance counts as sent). SQLite cannot alter a CHECK
-- constraint, so the table is rebuilt with the same columns, ids and index.
CREATE TABLE alert_ledger_new (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    appointment_external_id TEXT NOT NULL,
    target_date             TEXT NOT NULL,
    technician_external_id  TEXT NOT NULL,
    state                   TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sending', 'sent', 'queued', 'failed', 'uncertain')),
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
INSERT INTO alert_ledger_new (id, appointment_external_id, target_date, technician_external_id, state, run_id,
                              recipient, transport, provider_message_id, error, attempts, created_at, updated_at)
    SELECT id, appointment_external_id, target_date, technician_external_id,
           CASE WHEN state = 'sent' AND transport = 'outbox' THEN 'queued' ELSE state END,
           run_id, recipient, transport, provider_message_id, error, attempts, created_at, updated_at
    FROM alert_ledger;
DROP TABLE alert_ledger;
ALTER TABLE alert_ledger_new RENAME TO alert_ledger;
CREATE INDEX IF NOT EXISTS alert_ledger_target_date ON alert_ledger (target_date, state);
