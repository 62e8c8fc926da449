/* SPDX-License-Identifier: MIT */
/* alert-ledger.c — state transitions of alert_ledger rows (see alert-ledger.h). Each transition
 * names the states it starts from in its WHERE clause, so a row can never go back from sent. */
#include "alert-ledger.h"

static const char *const state_names[] = {
        [LEDGER_NONE] = "none",       [LEDGER_PENDING] = "pending", [LEDGER_SENDING] = "sending",
        [LEDGER_SENT] = "sent",       [LEDGER_QUEUED] = "queued",   [LEDGER_FAILED] = "failed",
        [LEDGER_UNCERTAIN] = "uncertain",
};

const char *ledger_state_to_string(LedgerState s) {
        return s < ELEMENTSOF(state_names) ? state_names[s] : "?";
}

static LedgerState ledger_state_from_string(const char *s) {
        for (size_t i = LEDGER_PENDING; s && i < ELEMENTSOF(state_names); i++)
                if (streq(s, state_names[i]))
                        return (LedgerState) i;
        return LEDGER_NONE;
}

int ledger_recover(Db *db, usec_t now) {
        char ts[ISO_UTC_MAX];
        return db_exec(db,
                       "UPDATE alert_ledger SET state = 'uncertain', updated_at = $1, "
                       "error = 'interrompu pendant l''envoi : le fournisseur a peut-être accepté le message' "
                       "WHERE state = 'sending'",
                       DB_PARAMS(DBV_TEXT_OR_NULL(format_iso_utc(now, ts))));
}

int ledger_plan(Db *db, const char *appointment_id, const char *target_date, const char *technician_id,
                const char *run_id, usec_t now, LedgerState *ret) {
        char buf[ISO_UTC_MAX];
        const char *ts = format_iso_utc(now, buf);
        int r = db_exec(db,
                        "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, "
                        "state, run_id, created_at, updated_at) VALUES ($1, $2, $3, 'pending', $4, $5, $5) "
                        "ON CONFLICT (appointment_external_id, target_date, technician_external_id) DO NOTHING",
                        DB_PARAMS(DBV_TEXT_OR_NULL(appointment_id), DBV_TEXT_OR_NULL(target_date),
                                  DBV_TEXT_OR_NULL(technician_id), DBV_TEXT_OR_NULL(run_id), DBV_TEXT_OR_NULL(ts)));
        if (r < 0)
                return r;
        _cleanup_free_ char *state = NULL;
        r = db_query_text(db,
                          "SELECT state FROM alert_ledger WHERE appointment_external_id = $1 AND target_date = $2 "
                          "AND technician_external_id = $3",
                          DB_PARAMS(DBV_TEXT_OR_NULL(appointment_id), DBV_TEXT_OR_NULL(target_date),
                                    DBV_TEXT_OR_NULL(technician_id)),
                          &state);
        if (r < 0)
                return r;
        *ret = r > 0 ? ledger_state_from_string(state) : LEDGER_NONE;
        return 0;
}

/* One UPDATE per appointment in one transaction: params[0] is set to each appointment id in
 * turn. With must_change, a row that no longer matches fails everything with -ESTALE. */
static int update_each(Db *db, const char *sql, DbValue *params, size_t n_params,
                       const char *const *appointment_ids, size_t n, bool must_change) {
        int r = db_begin(db);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                params[0] = DBV_TEXT_OR_NULL(appointment_ids[i]);
                r = db_exec(db, sql, params, n_params);
                if (r == 0 && must_change)
                        r = -ESTALE;
                if (r < 0) {
                        (void) db_rollback(db);
                        return r;
                }
        }
        return db_commit(db);
}

int ledger_begin_send(Db *db, const char *const *appointment_ids, size_t n, const char *target_date,
                      const char *technician_id, const char *run_id, const char *recipient, const char *transport,
                      usec_t now) {
        char buf[ISO_UTC_MAX];
        DbValue params[] = {
                DB_NULL, DBV_TEXT_OR_NULL(target_date), DBV_TEXT_OR_NULL(technician_id), DBV_TEXT_OR_NULL(run_id),
                DBV_TEXT_OR_NULL(recipient), DBV_TEXT_OR_NULL(transport), DBV_TEXT_OR_NULL(format_iso_utc(now, buf)),
        };
        /* Committed, so durable, before the provider hears of it: a crash from here on leaves `sending`. */
        return update_each(db,
                           "UPDATE alert_ledger SET state = 'sending', run_id = $4, recipient = $5, transport = $6, "
                           "attempts = attempts + 1, error = NULL, updated_at = $7 "
                           "WHERE appointment_external_id = $1 AND target_date = $2 AND technician_external_id = $3 "
                           "AND state IN ('pending', 'failed')",
                           params, ELEMENTSOF(params), appointment_ids, n, true);
}

int ledger_end_send(Db *db, const char *const *appointment_ids, size_t n, const char *target_date,
                    const char *technician_id, LedgerState state, const char *provider_id, const char *error,
                    usec_t now) {
        char buf[ISO_UTC_MAX];
        _cleanup_free_ char *safe_error = db_redact(db, error);
        DbValue params[] = {
                DB_NULL, DBV_TEXT_OR_NULL(target_date), DBV_TEXT_OR_NULL(technician_id),
                DBV_TEXT_OR_NULL(ledger_state_to_string(state)), DBV_TEXT_OR_NULL(provider_id),
                DBV_TEXT_OR_NULL(safe_error), DBV_TEXT_OR_NULL(format_iso_utc(now, buf)),
        };
        return update_each(db,
                           "UPDATE alert_ledger SET state = $4, provider_message_id = $5, error = $6, updated_at = $7 "
                           "WHERE appointment_external_id = $1 AND target_date = $2 AND technician_external_id = $3 "
                           "AND state = 'sending'",
                           params, ELEMENTSOF(params), appointment_ids, n, false);
}
