/* SPDX-License-Identifier: MIT */
/* slot-guard.c — the once-per-slot rule of scheduled runs. Two places apply it: `should-run`
 * (ExecCondition=) before the run starts, and the runner under the task lock (runner.c), which
 * records `skipped`. should-run may not see the store: systemd 252 runs ExecCondition= without
 * the unit's credentials (upstream issue 35788), so there a PostgreSQL store named only by the
 * database-url credential is out of reach and an absent DATABASE_URL must not be read as
 * "SQLite". It therefore reads first a stamp in the state directory (no secret needed), then
 * the store when it can see which one is configured, and otherwise says so and leaves the
 * decision to the runner. It never skips on a guess. */
#include "slot-guard.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "journal.h"
#include "manager.h"
#include "store.h"

#define SLOT_STAMP_MAX 64

Slot slot_of(const Task *task, usec_t t) {
        Slot s = { .day = slot_day_of(t, task->slot_hour, task->slot_minute) };
        s.from = local_to_utc(s.day, task->slot_hour, task->slot_minute);
        s.to = local_to_utc(local_date_add_days(s.day, 1), task->slot_hour, task->slot_minute);
        return s;
}

static char *stamp_path(const char *state_dir, const Task *task) {
        return xasprintf("%s/slots/%s.done", state_dir, task->name);
}

int slot_stamp_write(const char *state_dir, const Task *task, const Slot *slot) {
        _cleanup_free_ char *dir = xasprintf("%s/slots", state_dir);
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = stamp_path(state_dir, task);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        char day[16];
        _cleanup_free_ char *text = xasprintf("%s\n", format_local_date(slot->day, day));
        size_t n = strlen(text);
        if (write(fd, text, n) != (ssize_t) n)
                r = errno ? -errno : -EIO;
        /* Not fsynced: a stamp lost in a crash only leaves the decision to the runner. */
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

int slot_stamp_matches(const char *state_dir, const Task *task, const Slot *slot) {
        _cleanup_free_ char *path = stamp_path(state_dir, task);
        _cleanup_free_ char *text = NULL;
        int r = read_file_bounded(path, SLOT_STAMP_MAX, &text);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        char day[16];
        format_local_date(slot->day, day);
        text[strcspn(text, "\n")] = 0;
        return streq(text, day);
}

/* Whether this process sees the store that the unit's runs use. A system unit always carries
 * the database-url credential (LoadCredential= with a SetCredential= default), so when it
 * cannot be read here the store may be PostgreSQL all the same. */
static bool store_choice_visible(const Config *c, const char **why) {
        if (c->database_url || c->bus != BUS_SYSTEM)
                return true;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (isempty(dir)) {
                *why = "this process got no credentials (systemd 252 gives ExecCondition= none)";
                return false;
        }
        _cleanup_free_ char *path = xasprintf("%s/database-url", dir);
        if (access(path, R_OK) < 0) {
                *why = "the database-url credential cannot be read here (systemd 252 gives ExecCondition= none)";
                return false;
        }
        return true;
}

static void skip_message(const LogContext *log, const Task *task, const Slot *slot, const char *source) {
        char d[16];
        log_full(log, LOG_NOTICE, 0, MESSAGE_ID_TASK_SKIPPED, "skipped", NULL,
                 "%s : le créneau du %s a déjà réussi (%s), déclenchement ignoré", task->label,
                 format_local_date(slot->day, d), source);
}

int slot_guard_should_run(const Config *config, int config_result, const Task *task) {
        LogContext log = { .task = task->name, .trigger = "scheduler" };
        int r;

        /* Only the timer's starts are guarded: a person asking for a run always gets one. */
        if (isempty(getenv("INVOCATION_ID")))
                return 0;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool by_timer = false;
        r = manager_bus_open(config->bus, &bus);
        if (r >= 0)
                r = manager_started_by_timer(bus, task->unit, task->timer, &by_timer);
        if (r < 0) {
                log_full(&log, LOG_WARNING, r, NULL, NULL, NULL,
                         "Cannot ask the service manager who started %s (%m): the runner decides whether the slot "
                         "is due.", task->unit);
                return 0;
        }
        if (!by_timer)
                return 0;

        Slot slot = slot_of(task, now_realtime());
        if (config->state_dir) {
                r = slot_stamp_matches(config->state_dir, task, &slot);
                if (r > 0) {
                        skip_message(&log, task, &slot, "repère local");
                        return 1;
                }
                if (r < 0)
                        log_full(&log, LOG_WARNING, r, NULL, NULL, NULL,
                                 "Cannot read the slot stamp of %s in %s/slots, ignoring: %m", task->name,
                                 config->state_dir);
        }

        const char *why = NULL;
        if (config_result < 0)
                why = config->error;
        else
                (void) store_choice_visible(config, &why);
        if (why) {
                log_run(&log, LOG_NOTICE, "Cannot check the slot of %s in the store: %s. The runner decides, "
                        "under its lock.", task->name, why);
                return 0;
        }

        /* A guard reads: it never creates or migrates the store (the runner does, under its lock). */
        _cleanup_(db_closep) Db *db = NULL;
        r = store_open_existing(config, &db);
        if (r == -ENOENT)
                return 0; /* no store yet: no run of any slot */
        if (r >= 0)
                r = store_scheduled_success_between(db, task->name, slot.from, slot.to);
        if (r < 0) {
                log_run(&log, LOG_WARNING, "Cannot check the slot of %s in the store (%s): the runner decides, "
                        "under its lock.", task->name, db ? db_error(db) : strerror(-r));
                return 0;
        }
        if (r == 0)
                return 0;
        skip_message(&log, task, &slot, "base de données");
        return 1;
}
