/* SPDX-License-Identifier: MIT */
/* daemon.h — gazelle-schedulerd's context, one struct passed to every handler, and its life
 * cycle (daemon.c): set-up, the store connection it keeps, the RunTask jobs it owns, start-up
 * housekeeping, serving until idle, tear-down. What the bus sees is registered separately by
 * bus_api_register() (bus-api.h); the program's main() (gazelle-schedulerd.c) joins the two. */
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"
#include "store.h"
#include "tasks.h"
#include "timeutil.h"

#define JOB_STASH_SIZE 32

/* A RunTask whose StartUnit job systemd has not finished yet. */
typedef struct StartJob {
        struct StartJob *next;
        struct Context *context;
        const Task *task;
        char run_id[RUN_ID_MAX];
        const char *triggered_by;    /* "manual" (an email was given) or "api": what the row says */
        char *job_path;              /* NULL until StartUnit replied */
        sd_bus_message *call;        /* the RunTask call, until answered */
        sd_bus_slot *start_slot;
} StartJob;

/* One task unit as the subscribers' watch sees it (bus-watch.c). */
typedef struct UnitWatch {
        char *path;                   /* the unit's object path */
        char *active_state;           /* last known ActiveState; NULL until someone subscribes */
        char invocation[33];          /* last known InvocationID, hex */
        char settled[33];             /* an activation over before the watch began: not announced */
        char announced[33];           /* the activation whose run TaskStarted announced */
        char started[RUN_ID_MAX];     /* the run last announced by TaskStarted */
        char finished[RUN_ID_MAX];    /* the run last announced by TaskFinished */
} UnitWatch;

typedef struct Context {
        Config config;
        sd_event *event;
        sd_bus *bus;
        Db *db;                      /* opened lazily; dropped and reopened when it fails */
        dev_t store_dev;             /* the SQLite file db has open: when the path names another */
        ino_t store_ino;             /* file (replaced, restored, deleted), db is reopened */
        char host[256];
        StartJob *jobs;
        sd_event_source *idle_source; /* fires after idle_exit_sec without any event */
        sd_event_source *activity_source; /* post source: re-arms idle_source after every event */
        /* JobRemoved signals that overtook their StartUnit reply: path and result. */
        struct {
                char *path;
                char *result;
        } stash[JOB_STASH_SIZE];
        unsigned stash_next;
        sd_bus_track *subscribers;   /* Subscribe() callers, counted per connection */
        bool following;              /* subscribed to systemd, following the units for them */
        UnitWatch watch[_TASK_MAX];
} Context;

/* Loads the configuration, opens the bus of the scope and the event loop (SIGTERM/SIGINT end
 * it). Logs what failed; -EINVAL for a bad configuration. Undo with context_clear(). */
int context_init(Context *c, BusScope scope);
/* Frees everything the context owns (jobs, watch state, bus, store, configuration). */
void context_clear(Context *c);

/* The store, (re)opened on demand: NULL with *error set when unavailable. A SQLite store whose
 * path no longer names the file it has open (replaced or deleted under the daemon) is reopened,
 * so that the daemon and a CLI reading the path never answer from two different histories. */
Db *context_store(Context *c, sd_bus_error *error);
/* Called when a store operation failed: a dead connection is dropped for the next call. */
void context_store_failed(Context *c, int r);

/* Whether a client is subscribed (Subscribe()): it keeps the daemon from exiting when idle. */
bool context_has_subscribers(const Context *c);

/* Unlinks (when listed) and frees a job; NULL is fine. */
void job_free(Context *c, StartJob *j);
static inline void job_freep(StartJob **j) {
        if (*j)
                job_free((*j)->context, *j);
}

/* Takes the bus name, marks stale runs interrupted, logs the next runs, tells systemd it is
 * ready and runs the event loop until a signal or the idle exit. Call after the bus object is
 * registered. 0 or -errno (logged). */
int daemon_serve(Context *c);
