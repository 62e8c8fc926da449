/* SPDX-License-Identifier: MIT */
/* store.h — the product's data store: opening the configured engine (SQLite by default,
 * PostgreSQL when DATABASE_URL is set) with its migrations applied, and the scheduler_logs
 * run lifecycle (README, "How a run is recorded") on top of db.h. Library layer: -errno, messages in db_error(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "db.h"
#include "run-status.h"
#include "timeutil.h"

#define RUN_ID_MAX 37 /* UUID text + NUL */

typedef struct RunRow {
        char *id;
        char *task_name;
        char *task_label;
        usec_t started_at;
        usec_t completed_at;       /* 0 when NULL */
        int64_t duration_seconds;  /* -1 when NULL */
        char *status;
        char *message;
        char *stats;               /* JSON text */
        char *triggered_by;
        char *triggered_by_user;
        usec_t created_at;
        char *invocation_id;
        char *host;
        int64_t pid;               /* 0 when NULL */
        bool has_caller_uid;       /* caller_uid is not NULL (0 is root, a real caller) */
        uint32_t caller_uid;       /* who started the run: bus credentials or the CLI's user */
        char *caller_name;         /* that uid's user name */
        uint64_t systemd_job_id;   /* 0 when NULL: the start job a daemon's pending row is for */
        char *triggered_by_name;   /* not a column: display name of the technician with that email */
} RunRow;

void run_row_clear(RunRow *row);

/* Opens the store the configuration names and applies pending migrations. The SQLite file's
 * directory is created (0700) when missing. */
int store_open(const Config *c, Db **ret);
/* The same store as it is, for readers that must not write (should-run, check-config): nothing
 * is created or migrated. -ENOENT when the SQLite file does not exist yet. */
int store_open_existing(const Config *c, Db **ret);

/* A new random (v4) UUID in text form. */
void run_id_new(char buf[static RUN_ID_MAX]);
bool run_id_valid(const char *s);

int store_run_insert(Db *db, const RunRow *row);
/* Claims the pending row the daemon made for this very start (status running, no pid, no
 * invocation, tied to the systemd start job job_id, started after not_before): sets
 * invocation_id, host and pid and fills *row. 1 when adopted, 0 when there is none. A pending
 * row tied to no job, or to another, is never adopted: it is someone else's start. */
int store_run_adopt(Db *db, const char *task, uint32_t job_id, usec_t not_before, const char *invocation_id,
                    const char *host, pid_t pid, RunRow *row);
/* Ties a pending row to the start job StartUnit queued for it (only while still pending). */
int store_run_set_job(Db *db, const char *id, uint32_t job_id);
/* How many pending rows of task on host are not tied to a job yet and started at or after
 * since: a daemon between its INSERT and StartUnit's reply (or one that died there). */
int store_run_pending_untied(Db *db, const char *task, const char *host, usec_t since, int64_t *ret);
int store_run_finish(Db *db, const char *id, const char *status, const char *message, const char *stats,
                     usec_t completed_at, int64_t duration_seconds);
/* The message of a run whose process ended before recording its end (forced stop, reboot,
 * crash): the one wording, whoever notices (the next runner, the daemon). */
#define RUN_INTERRUPTED_MESSAGE                                                                      \
        "Interrompue : le processus s'est arrêté avant la fin (arrêt forcé, redémarrage ou panne). " \
        "Relancez la tâche."
/* Marks the task's other running rows on this host error, RUN_INTERRUPTED_MESSAGE: rows with a
 * pid (a runner that died: the caller knows the task is not busy, so none is alive), pending
 * rows older than pending_before (a start that never reached the runner), and — when the caller
 * knows the unit's only live job (live_job >= 0; 0: the unit has none) — pending rows tied to
 * any other job: systemd keeps one job per unit, so theirs is gone. Returns how many. */
#define STORE_LIVE_JOB_UNKNOWN (-1)
int store_run_reap(Db *db, const char *task, const char *host, const char *keep_id, int64_t live_job,
                   usec_t pending_before, usec_t now);
/* Closes one run as interrupted (error, RUN_INTERRUPTED_MESSAGE, completed now). */
int store_run_interrupted(Db *db, const char *id, usec_t now);
/* The same, only if the run is still `running` (a dead holder's run, whatever host it ran on).
 * Returns 1 when closed, 0 when it had ended. */
int store_run_close_interrupted(Db *db, const char *id, usec_t now);
/* A successful (success or warning) scheduler-triggered run started in [from, to)? 1/0/-errno. */
int store_scheduled_success_between(Db *db, const char *task, usec_t from, usec_t to);

/* Streams rows newest first: limit rows, optionally only one task. Read them with
 * store_run_read(). */
int store_runs_query(Db *db, unsigned limit, const char *task, DbCursor **ret);
int store_run_read(DbCursor *c, RunRow *row);
/* The newest run of a task (status filter optional); 1 found, 0 none. */
int store_run_last(Db *db, const char *task, const char *status_a, const char *status_b, RunRow *row);
/* What ListTasks and `status` tell of a task from the store: its newest run and its newest
 * success or warning (each left empty, id NULL, when there is none). */
typedef struct TaskHistory {
        RunRow last;
        RunRow last_ok;
} TaskHistory;
int store_task_history(Db *db, const char *task, TaskHistory *ret);
void task_history_clear(TaskHistory *h);

/* The display name ("Nick") of the technician whose address started a manual run, into
 * row->triggered_by_name: RunTask stores the email, people read the name. Nothing when the
 * address is no configured technician's. */
void run_row_name_technician(RunRow *row, const Settings *settings);

/* One run by id; 1 found, 0 none. */
int store_run_get(Db *db, const char *id, RunRow *row);
/* The run of task recorded by the unit activation invocation_id (32 hex digits); 1/0/-errno. */
int store_run_by_invocation(Db *db, const char *task, const char *invocation_id, RunRow *row);
