/* SPDX-License-Identifier: MIT */
/* daemon.c — gazelle-schedulerd's context life cycle: set-up, the store connection it keeps,
 * the RunTask jobs it owns, start-up housekeeping (stale runs, next runs), and serving until
 * idle with a bus-activation idle exit that loses no call. */
#include "daemon.h"

#include <sys/stat.h>

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "bus-errors.h"
#include "journal.h"
#include "manager.h"
#include "task-lock.h"

#define PENDING_STALE_USEC (10 * 60 * USEC_PER_SEC)

int context_init(Context *c, BusScope scope) {
        assert(c);
        *c = (Context) {};
        int r = config_load(&c->config, scope);
        if (r < 0)
                return log_error_errno(r, "Invalid configuration: %s", c->config.error);
        host_name(c->host);

        r = sd_event_default(&c->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);

        r = manager_bus_open(scope, &c->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m",
                                       scope == BUS_SYSTEM ? "system" : "user");
        (void) sd_bus_error_add_map(gazelle_bus_errors);
        return 0;
}

void job_free(Context *c, StartJob *j) {
        assert(c);
        if (!j)
                return;
        for (StartJob **p = &c->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        sd_bus_slot_unref(j->start_slot);
        sd_bus_message_unref(j->call);
        free(j->job_path);
        free(j);
}

void context_clear(Context *c) {
        assert(c);
        while (c->jobs)
                job_free(c, c->jobs);
        for (unsigned i = 0; i < JOB_STASH_SIZE; i++) {
                free(c->stash[i].path);
                free(c->stash[i].result);
        }
        c->subscribers = sd_bus_track_unref(c->subscribers);
        for (int i = 0; i < _TASK_MAX; i++) {
                free(c->watch[i].path);
                free(c->watch[i].active_state);
        }
        sd_event_source_unref(c->activity_source);
        sd_event_source_unref(c->idle_source);
        sd_bus_flush_close_unref(c->bus);
        sd_event_unref(c->event);
        db_close(c->db);
        config_clear(&c->config);
        *c = (Context) {};
}

/* The SQLite file at the store's path is not the one c->db has open (or is gone). */
static bool store_file_replaced(const Context *c) {
        struct stat st;
        if (db_backend(c->db) != DB_SQLITE)
                return false;
        if (stat(c->config.sqlite_path, &st) < 0)
                return true;
        return st.st_dev != c->store_dev || st.st_ino != c->store_ino;
}

Db *context_store(Context *c, sd_bus_error *error) {
        assert(c);
        if (c->db && store_file_replaced(c)) {
                log_info("The store %s was replaced or deleted under the daemon: reopening it",
                           c->config.sqlite_path);
                c->db = db_close(c->db);
        }
        if (c->db)
                return c->db;
        Db *db = NULL;
        int r = store_open(&c->config, &db);
        if (r < 0) {
                log_warning("Store unavailable: %s", db ? db_error(db) : strerror(-r));
                bus_error_setf(error, BUS_ERROR_STORE_UNAVAILABLE,
                                  "The store cannot be opened (%s): check DATABASE_URL or the state directory, "
                                  "then retry.", db ? db_error(db) : strerror(-r));
                db_close(db);
                return NULL;
        }
        struct stat st;
        if (db_backend(db) == DB_SQLITE && stat(c->config.sqlite_path, &st) >= 0) {
                c->store_dev = st.st_dev;
                c->store_ino = st.st_ino;
        }
        c->db = db;
        return db;
}

void context_store_failed(Context *c, int r) {
        assert(c);
        if (r == -ECONNRESET || r == -ECONNREFUSED || r == -EIO)
                c->db = db_close(c->db);
}

bool context_has_subscribers(const Context *c) {
        assert(c);
        return c->subscribers && sd_bus_track_count(c->subscribers) > 0;
}

/* A task that is not busy has no live runner: its `running` rows on this host are leftovers of
 * a crash. At start-up no RunTask of ours is in flight, so a pending row is a dead daemon's:
 * closed at once unless the unit has a start job queued (its runner adopts or closes it). */
static void reap_stale_runs(Context *c) {
        Db *db = context_store(c, NULL);
        if (!db)
                return;
        usec_t now = now_realtime();
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                if (task_busy(&c->config, c->bus, t))
                        continue; /* a runner is alive */
                uint32_t job = 0;
                bool job_known = manager_unit_job(c->bus, t->unit, &job) >= 0;
                if (job != 0)
                        continue; /* a start is queued: its runner decides */
                int r = store_run_reap(db, t->name, c->host, NULL, job_known ? 0 : STORE_LIVE_JOB_UNKNOWN,
                                       job_known ? now : now - PENDING_STALE_USEC, now);
                if (r > 0)
                        log_info("Marked %d interrupted run(s) of %s as error", r, t->name);
                else if (r < 0)
                        log_warning("Failed to mark interrupted runs of %s, ignoring: %s", t->name, db_error(db));
        }
}

static void log_next_runs(Context *c) {
        log_info("Prochaines exécutions :");
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                usec_t next = 0;
                char buf[RFC3339_MAX];
                int r = manager_timer_next_elapse(c->bus, t->timer, &next);
                log_info("   - %s (%02d:%02d) : %s", t->label, t->slot_hour, t->slot_minute,
                         r < 0 ? "minuterie introuvable" : next ? format_local_rfc3339(next, buf) : "non planifiée");
        }
}

/* The idle countdown starts again: idle_exit_sec from now. */
static int idle_rearm(Context *c) {
        uint64_t now;
        int r = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_source_set_time(c->idle_source, now + (uint64_t) c->config.idle_exit_sec * USEC_PER_SEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->idle_source, SD_EVENT_ONESHOT);
        return r;
}

/* Runs after every loop iteration that dispatched something (a call, a signal we match, a
 * reply, a subscriber gone): whatever happened is activity. */
static int on_activity(sd_event_source *s, void *userdata) {
        return idle_rearm(userdata);
}

/* idle_exit_sec without any event. Give the name back first, then serve whatever was already
 * queued for us, so that a call racing the exit is answered here or activates a fresh instance
 * — never lost. A RunTask job still waiting for systemd, or a subscriber (an open Cockpit page,
 * waiting for our signals), keeps us. */
static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *c = userdata;

        if (c->jobs || context_has_subscribers(c))
                return idle_rearm(c);
        log_debug("Idle for %u s, exiting", c->config.idle_exit_sec);
        (void) sd_bus_release_name(c->bus, BUS_NAME);
        while (sd_bus_process(c->bus, NULL) > 0)
                ;
        (void) sd_bus_flush(c->bus);
        return sd_event_exit(c->event, 0);
}

static int idle_exit_arm(Context *c) {
        int r = sd_event_add_time(c->event, &c->idle_source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, c);
        if (r >= 0)
                r = sd_event_add_post(c->event, &c->activity_source, on_activity, c);
        if (r >= 0)
                r = idle_rearm(c);
        return r;
}

int daemon_serve(Context *c) {
        assert(c && c->bus && c->event);
        int r = sd_bus_attach_event(c->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_request_name(c->bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", BUS_NAME);
        if (c->config.idle_exit_sec > 0) {
                r = idle_exit_arm(c);
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the idle timer: %m");
        }

        reap_stale_runs(c);
        log_next_runs(c);
        (void) sd_notify(false, "READY=1\nSTATUS=Prêt : en attente d'appels D-Bus");

        r = sd_event_loop(c->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
