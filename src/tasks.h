/* SPDX-License-Identifier: MIT */
/* tasks.h — the fixed table of tasks: technical names, aliases, French labels, units, slots. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum TaskId {
        TASK_SYNC_GAZELLE,
        TASK_RAPPORT_TIMELINE,
        TASK_BACKUP,
        TASK_RV_ALERTS,
        _TASK_MAX,
} TaskId;

typedef struct Task {
        TaskId id;
        const char *name;        /* technical name, stored in scheduler_logs.task_name */
        const char *label;       /* French label shown to people */
        const char *unit;        /* gazelle-<x>.service */
        const char *timer;       /* gazelle-<x>.timer */
        const char *aliases[3];  /* NULL-terminated */
        int slot_hour, slot_minute;
        const char *schedule;    /* human form of the timer, "tous les jours à 01:00" */
} Task;

const Task *task_get(TaskId id);
/* Technical name or alias, case-sensitive, bounded; NULL when unknown. */
const Task *task_lookup(const char *name);
const Task *task_by_unit(const char *unit);
/* "sync_gazelle (sync), rapport_timeline (rapport, report), backup, rv_alerts (alerts)" */
const char *task_valid_names(void);
