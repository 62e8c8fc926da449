/* SPDX-License-Identifier: MIT */
/* run-status.h — the vocabulary of a scheduler_logs row: a run's status and what triggered it.
 * One string table each; the strings are what the store, the journal (GAZELLE_STATUS=,
 * GAZELLE_TRIGGER=) and the D-Bus API carry, and the store's CHECK constraints allow. */
#pragma once

typedef enum RunStatus {
        RUN_STATUS_NONE,     /* not decided yet (a task that set no status failed) */
        RUN_RUNNING,
        RUN_SUCCESS,
        RUN_WARNING,
        RUN_ERROR,
        RUN_SKIPPED,
        _RUN_STATUS_MAX,
} RunStatus;

typedef enum RunTrigger {
        TRIGGER_NONE,        /* unknown */
        TRIGGER_SCHEDULER,   /* the unit's timer */
        TRIGGER_MANUAL,      /* a person: systemctl start, or RunTask with an email */
        TRIGGER_API,         /* RunTask without an email */
        TRIGGER_CLI,         /* `gazelle-scheduler run` outside systemd */
        _RUN_TRIGGER_MAX,
} RunTrigger;

/* "running", "success", …; NULL for RUN_STATUS_NONE or out of range. */
const char *run_status_to_string(RunStatus s);
/* RUN_STATUS_NONE for NULL or an unknown string. */
RunStatus run_status_from_string(const char *s);
/* "scheduler", "manual", "api", "cli"; NULL for TRIGGER_NONE or out of range. */
const char *run_trigger_to_string(RunTrigger t);
/* TRIGGER_NONE for NULL or an unknown string. */
RunTrigger run_trigger_from_string(const char *s);
