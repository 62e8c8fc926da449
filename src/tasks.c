/* SPDX-License-Identifier: MIT */
/* tasks.c — the task table (names, labels, units and slots are fixed: the
 * journal, the store and the Cockpit page use them) and name/alias lookup. */
#include "tasks.h"

#include <string.h>

static const Task tasks[_TASK_MAX] = {
        [TASK_SYNC_GAZELLE] = {
                .id = TASK_SYNC_GAZELLE, .name = "sync_gazelle", .label = "Sync Gazelle Totale",
                .unit = "gazelle-sync.service", .timer = "gazelle-sync.timer",
                .aliases = { "sync", NULL }, .slot_hour = 1, .slot_minute = 0,
                .schedule = "tous les jours à 01:00",
        },
        [TASK_RAPPORT_TIMELINE] = {
                .id = TASK_RAPPORT_TIMELINE, .name = "rapport_timeline", .label = "Rapport Timeline Google Sheets",
                .unit = "gazelle-report.service", .timer = "gazelle-report.timer",
                .aliases = { "rapport", "report", NULL }, .slot_hour = 2, .slot_minute = 0,
                .schedule = "tous les jours à 02:00",
        },
        [TASK_BACKUP] = {
                .id = TASK_BACKUP, .name = "backup", .label = "Backup SQL",
                .unit = "gazelle-backup.service", .timer = "gazelle-backup.timer",
                .aliases = { NULL }, .slot_hour = 3, .slot_minute = 0,
                .schedule = "tous les jours à 03:00",
        },
        [TASK_RV_ALERTS] = {
                .id = TASK_RV_ALERTS, .name = "rv_alerts", .label = "Sync RV & Alertes",
                .unit = "gazelle-alerts.service", .timer = "gazelle-alerts.timer",
                .aliases = { "alerts", NULL }, .slot_hour = 16, .slot_minute = 0,
                .schedule = "tous les jours à 16:00",
        },
};

const Task *task_get(TaskId id) {
        return id >= 0 && id < _TASK_MAX ? &tasks[id] : NULL;
}

const Task *task_lookup(const char *name) {
        if (!name || strnlen(name, 64) >= 64)
                return NULL;
        for (size_t i = 0; i < _TASK_MAX; i++) {
                if (strcmp(tasks[i].name, name) == 0)
                        return &tasks[i];
                for (const char *const *a = tasks[i].aliases; *a; a++)
                        if (strcmp(*a, name) == 0)
                                return &tasks[i];
        }
        return NULL;
}

const Task *task_by_unit(const char *unit) {
        for (size_t i = 0; unit && i < _TASK_MAX; i++)
                if (strcmp(tasks[i].unit, unit) == 0)
                        return &tasks[i];
        return NULL;
}

const char *task_valid_names(void) {
        return "sync_gazelle (sync), rapport_timeline (rapport, report), backup, rv_alerts (alerts)";
}
