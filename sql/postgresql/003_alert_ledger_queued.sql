-- 003_alert_ledger_queued (PostgreSQL): an alert written to the outbox directory is `queued`,
-- never `sent` (only a provider's acceptance counts as sent).
ALTER TABLE alert_ledger DROP CONSTRAINT IF EXISTS alert_ledger_state_check;
UPDATE alert_ledger SET state = 'queued' WHERE state = 'sent' AND transport = 'outbox';
ALTER TABLE alert_ledger ADD CONSTRAINT alert_ledger_state_check
    CHECK (state IN ('pending', 'sending', 'sent', 'queued', 'failed', 'uncertain'));
