/* SPDX-License-Identifier: MIT */
/* run-status.c — the status and trigger string tables. */
#include "run-status.h"

#include "util.h"

static const char *const status_table[_RUN_STATUS_MAX] = {
        [RUN_RUNNING] = "running",
        [RUN_SUCCESS] = "success",
        [RUN_WARNING] = "warning",
        [RUN_ERROR] = "error",
        [RUN_SKIPPED] = "skipped",
};

static const char *const trigger_table[_RUN_TRIGGER_MAX] = {
        [TRIGGER_SCHEDULER] = "scheduler",
        [TRIGGER_MANUAL] = "manual",
        [TRIGGER_API] = "api",
        [TRIGGER_CLI] = "cli",
};

static int lookup(const char *const *table, int n, const char *s) {
        for (int i = 1; s && i < n; i++)
                if (streq(table[i], s))
                        return i;
        return 0;
}

const char *run_status_to_string(RunStatus s) {
        return s > RUN_STATUS_NONE && s < _RUN_STATUS_MAX ? status_table[s] : NULL;
}

RunStatus run_status_from_string(const char *s) {
        return (RunStatus) lookup(status_table, _RUN_STATUS_MAX, s);
}

const char *run_trigger_to_string(RunTrigger t) {
        return t > TRIGGER_NONE && t < _RUN_TRIGGER_MAX ? trigger_table[t] : NULL;
}

RunTrigger run_trigger_from_string(const char *s) {
        return (RunTrigger) lookup(trigger_table, _RUN_TRIGGER_MAX, s);
}
