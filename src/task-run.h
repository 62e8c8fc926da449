/* SPDX-License-Identifier: MIT */
/* task-run.h — the four tasks' functions, and running one of them through the runner: the only
 * file that knows every task module, above them all (the runner below knows none). */
#pragma once

#include "runner.h"

/* The function of a task (sync_task_run, report_task_run, backup_task_run, alerts_task_run). */
TaskRunFunc task_run_function(const Task *task);
/* `gazelle-scheduler run TASK`: runner_run() with the task's function; a process exit code. */
int task_run(const Config *config, const Task *task, const RunOptions *options);
