/* SPDX-License-Identifier: MIT */
/* bus-watch.c — subscribers and the runs they are told about. Subscribe()/Unsubscribe() are
 * counted per bus connection with sd_bus_track, as systemd's own Manager.Subscribe is: a client
 * that disconnects or dies is dropped by the bus, never left behind. While anyone is
 * subscribed, the daemon is subscribed to systemd (which emits unit PropertiesChanged only to
 * subscribed managers' clients) and follows the four task units: a unit activation whose
 * runner recorded a scheduler_logs row (found by the unit's InvocationID; the runner reports
 * "démarrage" through sd_notify STATUS= right after, which is the change that wakes us) is
 * announced with TaskStarted, its end with TaskFinished — timer, systemctl, CLI-through-systemd
 * and RunTask alike. Recursive tracking: one Cockpit bridge connection can carry several pages,
 * each with its own Subscribe(). */
#include "bus-watch.h"

#include "bus-errors.h"
#include "journal.h"
#include "manager.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

void watch_emit_started(Context *c, const Task *t, const char *run_id, const char *triggered_by) {
        UnitWatch *w = &c->watch[t->id];
        if (streq(w->started, run_id))
                return;
        snprintf(w->started, sizeof w->started, "%s", run_id);
        (void) sd_bus_emit_signal(c->bus, BUS_PATH, BUS_INTERFACE, "TaskStarted", "sss", t->name, run_id,
                                  strempty(triggered_by));
}

void watch_emit_finished(Context *c, const Task *t, const char *run_id, const char *status, const char *message) {
        UnitWatch *w = &c->watch[t->id];
        if (streq(w->finished, run_id))
                return;
        snprintf(w->finished, sizeof w->finished, "%s", run_id);
        (void) sd_bus_emit_signal(c->bus, BUS_PATH, BUS_INTERFACE, "TaskFinished", "ssss", t->name, run_id, status,
                                  strempty(message));
}

void run_interrupted(Context *c, const Task *t, const char *run_id) {
        Db *db = context_store(c, NULL);
        int r = db ? store_run_interrupted(db, run_id, now_realtime()) : -EHOSTDOWN;
        if (r < 0) {
                log_warning("Failed to close interrupted run %s: %s", run_id, db ? db_error(db) : "store unavailable");
                if (db)
                        context_store_failed(c, r);
        }
        watch_emit_finished(c, t, run_id, "error", RUN_INTERRUPTED_MESSAGE);
}

/* What the unit's current (or last) activation means for its run, told once each. */
static void watch_check(Context *c, const Task *t) {
        UnitWatch *w = &c->watch[t->id];
        _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };

        if (!w->active_state || isempty(w->invocation) || streq(w->invocation, w->settled))
                return;
        /* Progress (STATUS=) of a run already announced: nothing to look up until it ends. */
        if (manager_active_state_running(w->active_state) && streq(w->invocation, w->announced))
                return;
        Db *db = context_store(c, NULL);
        if (!db)
                return;
        int r = store_run_by_invocation(db, t->name, w->invocation, &row);
        if (r < 0) {
                log_warning("Failed to look up the run of %s (invocation %s), ignoring: %s", t->unit, w->invocation,
                            db_error(db));
                context_store_failed(c, r);
                return;
        }
        if (r == 0)
                return; /* not recorded yet (its STATUS= change will bring us back), or skipped by the guard */
        watch_emit_started(c, t, row.id, row.triggered_by);
        memcpy(w->announced, w->invocation, sizeof w->announced);
        if (manager_active_state_running(w->active_state) || streq(w->finished, row.id))
                return;
        if (run_status_from_string(row.status) == RUN_RUNNING)
                run_interrupted(c, t, row.id); /* the unit is over, its runner never closed the row */
        else
                watch_emit_finished(c, t, row.id, row.status, row.message);
}

static int read_invocation(sd_bus_message *m, char ret[static 33]) {
        const void *p;
        size_t n;
        int r = sd_bus_message_enter_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 'y', &p, &n);
        if (r < 0)
                return r;
        ret[0] = 0;
        for (size_t i = 0; n == 16 && i < 16; i++)
                snprintf(ret + 2 * i, 3, "%02x", ((const uint8_t *) p)[i]);
        return sd_bus_message_exit_container(m);
}

/* PropertiesChanged(s interface, a{sv} changed, as invalidated) of one of the four units. */
static int on_unit_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *path = sd_bus_message_get_path(m), *iface, *name;
        const Task *t = NULL;
        int r;

        for (int i = 0; i < _TASK_MAX && !t; i++)
                if (c->watch[i].path && streq_ptr(c->watch[i].path, path))
                        t = task_get((TaskId) i);
        if (!t || !context_has_subscribers(c))
                return 0;
        UnitWatch *w = &c->watch[t->id];
        r = sd_bus_message_read(m, "s", &iface);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0 && streq(name, "ActiveState")) {
                        const char *s;
                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r >= 0) {
                                free(w->active_state);
                                w->active_state = xstrdup(s);
                        }
                } else if (r >= 0 && streq(name, "InvocationID"))
                        r = read_invocation(m, w->invocation);
                else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r < 0) {
                log_debug_errno(r, "Ignoring a malformed PropertiesChanged of %s: %m", t->unit);
                return 0;
        }
        watch_check(c, t);
        return 0;
}

/* The units' state when the first subscriber comes: later changes arrive as signals. A run
 * in progress is announced to the newcomer; one that ended before it came is history. */
static void watch_load(Context *c) {
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                UnitWatch *w = &c->watch[i];
                free(w->active_state);
                w->active_state = NULL;
                if (manager_unit_active_state(c->bus, t->unit, &w->active_state) < 0 ||
                    manager_unit_invocation_id(c->bus, t->unit, w->invocation) < 0)
                        w->invocation[0] = 0;
                if (manager_active_state_running(w->active_state))
                        w->settled[0] = 0;
                else
                        memcpy(w->settled, w->invocation, sizeof w->settled);
                watch_check(c, t);
        }
}

static int on_systemd_subscribed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        /* AlreadySubscribed: the connection was subscribed already, which is all we want. */
        if (e && !sd_bus_error_has_name(e, "org.freedesktop.systemd1.AlreadySubscribed"))
                log_warning("Failed to subscribe to systemd, runs not started by RunTask will not be signalled: %s",
                            e->message ? e->message : e->name);
        return 0;
}

/* Called by sd-bus whenever the tracker is empty (once right after its creation, too). Returns
 * 1: 0 would have sd-bus call it again and again for as long as the tracker stays empty. */
static int on_subscribers_gone(sd_bus_track *track, void *userdata) {
        Context *c = userdata;
        if (!c->following)
                return 1;
        c->following = false;
        log_debug("Last subscriber gone, unsubscribing from systemd");
        (void) sd_bus_call_method_async(c->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Unsubscribe", NULL, NULL, "");
        return 1;
}

int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;

        if (!c->subscribers)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "Subscriptions need a message bus; this is a direct connection.");
        int r = sd_bus_track_add_sender(c->subscribers, m);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot track the subscriber: %s", strerror(-r));
        if (!c->following) {
                c->following = true;
                log_debug("First subscriber %s, following the task units", strempty(sd_bus_message_get_sender(m)));
                r = sd_bus_call_method_async(c->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe",
                                             on_systemd_subscribed, c, "");
                if (r < 0)
                        log_warning_errno(r, "Failed to subscribe to systemd: %m");
                watch_load(c);
        }
        return sd_bus_reply_method_return(m, NULL);
}

int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;

        int r = c->subscribers ? sd_bus_track_remove_sender(c->subscribers, m) : 0;
        if (r < 0)
                return r;
        if (r == 0)
                return sd_bus_error_set(error, BUS_ERROR_NOT_SUBSCRIBED,
                                        "This connection is not subscribed: call Subscribe() first.");
        return sd_bus_reply_method_return(m, NULL);
}

int watch_register(Context *c) {
        int r;

        /* Names come and go only on a bus: a direct connection (the vtable tests' socketpair)
         * has no subscribers to track, and Subscribe() says so. */
        if (sd_bus_is_bus_client(c->bus) > 0) {
                r = sd_bus_track_new(c->bus, &c->subscribers, on_subscribers_gone, c);
                if (r < 0)
                        return r;
                r = sd_bus_track_set_recursive(c->subscribers, true);
                if (r < 0)
                        return r;
        }
        for (int i = 0; i < _TASK_MAX; i++) {
                r = sd_bus_path_encode(SD_PATH "/unit", task_get((TaskId) i)->unit, &c->watch[i].path);
                if (r < 0)
                        return r;
                r = sd_bus_match_signal(c->bus, NULL, SD_DEST, c->watch[i].path, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_unit_changed, c);
                if (r < 0)
                        return r;
        }
        return 0;
}
