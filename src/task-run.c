/* SPDX-License-Identifier: MIT */
/* task-run.c — which function runs which task. */
#include "task-run.h"

#include "alerts.h"
#include "backup.h"
#include "report.h"
#include "sync.h"

static const TaskRunFunc task_functions[_TASK_MAX] = {
        [TASK_SYNC_GAZELLE] = sync_task_run,
        [TASK_RAPPORT_TIMELINE] = report_task_run,
        [TASK_BACKUP] = backup_task_run,
        [TASK_RV_ALERTS] = alerts_task_run,
};

TaskRunFunc task_run_function(const Task *task) {
        assert(task && task->id >= 0 && task->id < _TASK_MAX);
        return task_functions[task->id];
}

int task_run(const Config *config, const Task *task, const RunOptions *options) {
        return runner_run(config, task, task_run_function(task), options);
}
