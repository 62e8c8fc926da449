/* daemon.c — gazelle-schedulerd: bus set-up, start-up housekeeping (stale runs, next runs),
 * bus-activation idle exit that loses no call, and the store connection it keeps. */
#include "daemon.h"

#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "bus-errors.h"
#include "bus-watch.h"
#include "journal.h"
#include "manager.h"
#include "task-lock.h"

#define IDLE_CHECK_USEC (1 * USEC_PER_SEC)
#define PENDING_STALE_USEC (10 * 60 * USEC_PER_SEC)

static void context_clear(Context *c) {
        while (c->jobs)
                job_free(c, c->jobs);
        for (unsigned i = 0; i < JOB_STASH_SIZE; i++) {
                free(c->stash[i].path);
                free(c->stash[i].result);
        }
        c->idle_source = sd_event_source_unref(c->idle_source);
        watch_clear(c);
        c->bus = sd_bus_flush_close_unref(c->bus);
        c->event = sd_event_unref(c->event);
        c->db = db_close(c->db);
        config_clear(&c->config);
}

/* A task that is not busy has no live runner: its `running` rows on this host are leftovers of
 * a crash. */
static void reap_stale_runs(Context *c) {
        Db *db = context_store(c, NULL);
        if (!db)
                return;
        usec_t now = now_realtime();
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                if (task_busy(&c->config, c->bus, t))
                        continue; /* a runner is alive */
                int r = store_run_reap(db, t->name, c->host, NULL, now - PENDING_STALE_USEC, now);
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

/* Exit when idle: give the name back first, then serve whatever was already queued for us, so
 * that a call racing the exit is answered here or activates a fresh instance — never lost. */
static int on_idle_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *c = userdata;
        usec_t idle = (usec_t) c->config.idle_exit_sec * USEC_PER_SEC;

        /* A subscriber (an open Cockpit page) keeps us: it waits for our signals. */
        if (!c->jobs && !watch_has_subscribers(c) && now_monotonic() - c->last_activity >= idle) {
                log_debug("Idle for %u s, exiting", c->config.idle_exit_sec);
                (void) sd_bus_release_name(c->bus, BUS_NAME);
                while (sd_bus_process(c->bus, NULL) > 0)
                        ;
                (void) sd_bus_flush(c->bus);
                return sd_event_exit(sd_event_source_get_event(s), 0);
        }
        int r = sd_event_source_set_time(s, usec + IDLE_CHECK_USEC);
        if (r < 0)
                return r;
        /* Time sources are one-shot: re-arm, or the daemon would never notice it is idle. */
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int run(int argc, char **argv) {
        static const struct option options[] = {
                { "system", no_argument, NULL, 's' },
                { "user", no_argument, NULL, 'u' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        BusScope scope = config_default_bus();
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 's':
                        scope = BUS_SYSTEM;
                        break;
                case 'u':
                        scope = BUS_USER;
                        break;
                case 'h':
                        printf("Usage: gazelle-schedulerd [--system|--user]\n\n"
                               "D-Bus service " BUS_NAME " (RunTask, GetLogs, GetTaskLogs, ListTasks, Subscribe).\n"
                               "Normally bus-activated through gazelle-schedulerd.service; exits after\n"
                               "GAZELLE_IDLE_EXIT_SEC (30) idle seconds. See gazelle-schedulerd(8).\n");
                        return 0;
                case 'V':
                        printf("gazelle-schedulerd %s\n", GAZELLE_VERSION);
                        return 0;
                default:
                        return 2;
                }

        _cleanup_(context_clear) Context c = {};
        r = config_load(&c.config, scope);
        if (r < 0) {
                log_error_errno(r, "Invalid configuration: %s", c.config.error);
                return 2;
        }
        host_name(c.host);

        r = sd_event_default(&c.event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m"), 1;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(c.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(c.event, NULL, SIGINT, NULL, NULL);

        r = manager_bus_open(scope, &c.bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m",
                                       scope == BUS_SYSTEM ? "system" : "user"), 1;
        (void) sd_bus_error_add_map(gazelle_bus_errors);
        r = bus_api_register(&c);
        if (r < 0)
                return log_error_errno(r, "Failed to register the D-Bus object: %m"), 1;
        r = sd_bus_attach_event(c.bus, c.event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m"), 1;
        r = sd_bus_request_name(c.bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", BUS_NAME), 1;

        c.last_activity = now_monotonic();
        if (c.config.idle_exit_sec > 0) {
                r = sd_event_add_time_relative(c.event, &c.idle_source, CLOCK_MONOTONIC, IDLE_CHECK_USEC, 0,
                                               on_idle_check, &c);
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the idle timer: %m"), 1;
        }

        reap_stale_runs(&c);
        log_next_runs(&c);
        (void) sd_notify(false, "READY=1\nSTATUS=Prêt : en attente d'appels D-Bus");

        r = sd_event_loop(c.event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return 0;
}

int main(int argc, char **argv) {
        tz_init();
        log_set_identifier("gazelle-schedulerd");
        umask(0077);
        return run(argc, argv);
}
