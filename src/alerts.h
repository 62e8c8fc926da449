/* SPDX-License-Identifier: MIT */
/* alerts.h — Sync RV & Alertes: tomorrow's unconfirmed appointments, one email per
 * technician, at most once per (appointment, day, technician) through the alert ledger. */
#pragma once

#include "runner.h"
#include "settings.h"

#define ALERTS_SLOT_HOUR 16
#define ALERTS_DEFAULT_MAX_LATENESS_USEC (4 * 3600 * USEC_PER_SEC)

/* Why an appointment is or is not alerted, in the order checked. */
typedef enum AlertClass {
        ALERT_UNCONFIRMED,
        ALERT_EXCLUDED_CANCELLED,   /* status not ACTIVE, or deleted from Gazelle */
        ALERT_EXCLUDED_TYPE,        /* PERSONAL, MEMO, SYNCED */
        ALERT_EXCLUDED_NO_CLIENT,
        ALERT_EXCLUDED_NO_TECHNICIAN,
        ALERT_EXCLUDED_CONFIRMED,
        ALERT_EXCLUDED_INSTITUTION,
        ALERT_EXCLUDED_ABSENT,      /* not returned by Gazelle any more, but not marked cancelled */
        _ALERT_CLASS_MAX,
} AlertClass;

/* The stats key of a class ("unconfirmed", "cancelled", "type", …). */
const char *alert_class_to_string(AlertClass c);

AlertClass alert_classify(const Settings *s, const char *type, const char *status, bool deleted, const char *client_id,
                          const char *client_name, const char *user_id, bool confirmed_by_client);


/* The day to alert about for a run started at `started`: the Montréal day after the run's
 * 16:00 slot. Returns 1 and sets *ret_lateness when the run is later than max_lateness after
 * its slot (the run must skip), 0 otherwise. */
int alerts_target_day(usec_t started, usec_t max_lateness, LocalDate *ret_target, LocalDate *ret_slot,
                      usec_t *ret_lateness);

/* "mercredi 25 novembre 2026". */
char *alerts_format_day_fr(LocalDate d);

int alerts_task_run(RunContext *ctx, TaskResult *result);
