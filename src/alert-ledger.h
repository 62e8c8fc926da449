/* SPDX-License-Identifier: MIT */
/* alert-ledger.h — the alert ledger (table alert_ledger): one row per (appointment, target day,
 * technician), so an alert goes out at most once across re-runs, restarts and crashes.
 *   pending   planned by a run, not handed to a transport yet
 *   sending   committed before the transport is called; left behind only by a crash
 *   sent      accepted by the provider (SendGrid's 2xx, the SMTP server's final OK)
 *   queued    written to the outbox directory: done for the ledger, never counted as sent
 *   failed    definitely not accepted: the next run tries again
 *   uncertain may have been accepted (crash or lost answer while sending): never re-sent
 *             automatically, reported until a person deals with it
 * Library layer: -errno, engine message in db_error(). */
#pragma once

#include "db.h"
#include "timeutil.h"

typedef enum LedgerState {
        LEDGER_NONE, /* no row */
        LEDGER_PENDING,
        LEDGER_SENDING,
        LEDGER_SENT,
        LEDGER_QUEUED,
        LEDGER_FAILED,
        LEDGER_UNCERTAIN,
} LedgerState;

const char *ledger_state_to_string(LedgerState s);

/* Every `sending` row becomes `uncertain`: the caller holds the task lock, so the run that
 * wrote it is dead. Returns how many rows changed. */
int ledger_recover(Db *db, usec_t now);

/* Inserts a pending row unless one exists, then returns the row's state. */
int ledger_plan(Db *db, const char *appointment_id, const char *target_date, const char *technician_id,
                const char *run_id, usec_t now, LedgerState *ret);

/* Moves the given appointments' pending/failed rows to `sending` in one transaction, with run,
 * recipient, transport and attempts+1. -ESTALE (and nothing changed) when a row is no longer
 * pending or failed. */
int ledger_begin_send(Db *db, const char *const *appointment_ids, size_t n, const char *target_date,
                      const char *technician_id, const char *run_id, const char *recipient, const char *transport,
                      usec_t now);

/* Moves the given appointments' `sending` rows to state (sent, failed or uncertain), in one
 * transaction. */
int ledger_end_send(Db *db, const char *const *appointment_ids, size_t n, const char *target_date,
                    const char *technician_id, LedgerState state, const char *provider_id, const char *error,
                    usec_t now);
