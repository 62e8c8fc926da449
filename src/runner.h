/* SPDX-License-Identifier: MIT */
/* runner.h — `gazelle-scheduler run TASK`: the run lifecycle
 * (lock, reap the dead, adopt or insert the row, run, finish, journal) around a task function. */
#pragma once

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "db.h"
#include "journal.h"
#include "run-status.h"
#include "store.h"
#include "tasks.h"

/* Exit codes, documented in --help. */
#define EXIT_TASK_OK 0
#define EXIT_TASK_FAILED 1
#define EXIT_USAGE 2

typedef struct RunOptions {
        bool full;
        bool dry_run;
        bool no_sync;          /* rv_alerts: use the store as is, no appointment sync first */
        LocalDate target_date; /* rv_alerts --target-date; year 0 = the day after the slot */
} RunOptions;

typedef struct RunContext {
        const Config *config;
        Db *db;
        const Task *task;
        RunOptions options;
        RunTrigger trigger;  /* what started this run (log.trigger is its string) */
        LogContext log;
        char run_id[RUN_ID_MAX];
        usec_t started_at;
        uint32_t job_id;       /* under systemd: the start job running us (0: none) */
        bool job_known;        /* job_id was read from the service manager */
        const volatile sig_atomic_t *cancelled; /* set by SIGTERM/SIGINT: stop at the next step */
} RunContext;

typedef struct TaskResult {
        RunStatus status;    /* RUN_SUCCESS, RUN_WARNING, RUN_ERROR, RUN_SKIPPED; NONE until set */
        char *message;       /* one French line */
        cJSON *stats;
} TaskResult;

/* A task fills *result (status, message, stats) and returns 0, or returns -errno after
 * setting at least result->message; the runner then records status error. */
typedef int (*TaskRunFunc)(RunContext *ctx, TaskResult *result);

void task_result_set(TaskResult *result, RunStatus status, const char *fmt, ...) _printf_(3, 4);
bool run_cancelled(const RunContext *ctx);
/* Frees the message and the stats (for _cleanup_). */
void task_result_clear(TaskResult *result);

/* Returns a process exit code. A `scheduler` run whose slot already succeeded is recorded
 * `skipped` without running (slot-guard.h). */
/* The run lifecycle around run (the task's function, which the runner does not know: see
 * task-run.h). Returns a process exit code. */
int runner_run(const Config *config, const Task *task, TaskRunFunc run, const RunOptions *options);
