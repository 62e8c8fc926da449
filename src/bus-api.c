/* SPDX-License-Identifier: MIT */
/* bus-api.c — the com.piano_tek.GazelleScheduler1 object: RunTask, GetLogs, ListTasks and the
 * TaskStarted/TaskFinished signals. Handlers follow one recipe: read → validate → authorize →
 * act → reply; StartUnit is asynchronous so the bus loop never waits for systemd or a task. */
#include <grp.h>
#include <pwd.h>
#include <strings.h>

#include "bus-errors.h"
#include "bus-watch.h"
#include "bus-api.h"
#include "journal.h"
#include "manager.h"
#include "task-lock.h"
#include "utf8.h"

#define EMAIL_MAX 254
#define GETLOGS_DEFAULT 20
#define GETLOGS_MAX 1000

/* A plausible address: local@domain.tld, printable ASCII without spaces, at most 254 bytes. */
static bool email_valid(const char *e) {
        size_t n = strnlen(e, EMAIL_MAX + 1);
        if (n == 0)
                return true; /* no email: an API call */
        if (n > EMAIL_MAX)
                return false;
        const char *at = strchr(e, '@');
        if (!at || at == e || strchr(at + 1, '@') || !at[1])
                return false;
        const char *dot = strrchr(at + 1, '.');
        if (!dot || dot == at + 1 || !dot[1])
                return false;
        for (const char *p = e; *p; p++)
                if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
                        return false;
        return true;
}

/* At most max bytes of a caller-supplied string for the journal, control and non-ASCII bytes
 * as '?': one request, one line. */
static char *printable(const char *s, size_t max) {
        char *p = strndup(s, max);
        if (!p)
                abort();
        for (char *q = p; *q; q++)
                if ((unsigned char) *q < ' ' || (unsigned char) *q >= 0x7f)
                        *q = '?';
        return p;
}

static int caller_identity(sd_bus_message *m, uid_t *ret_uid, char **ret_name, bool *ret_admin, const char *admin_group) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;

        /* Credentials come from the bus daemon (SO_PEERCRED at connect time), never from /proc. */
        int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        if (r < 0)
                return r;

        struct passwd pw, *pwp = NULL;
        char buf[4096];
        (void) getpwuid_r(uid, &pw, buf, sizeof buf, &pwp);
        *ret_uid = uid;
        *ret_name = pwp ? xstrdup(pwp->pw_name) : xasprintf("uid %u", (unsigned) uid);
        *ret_admin = uid == 0;
        if (!*ret_admin && pwp) {
                struct group gr, *grp = NULL;
                char gbuf[8192];
                if (getgrnam_r(admin_group, &gr, gbuf, sizeof gbuf, &grp) == 0 && grp) {
                        gid_t groups[256];
                        int ngroups = ELEMENTSOF(groups);
                        if (getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &ngroups) >= 0)
                                for (int i = 0; i < ngroups; i++)
                                        if (groups[i] == grp->gr_gid)
                                                *ret_admin = true;
                }
        }
        return 0;
}

static StartJob *job_for_task(Context *c, const Task *t) {
        for (StartJob *j = c->jobs; j; j = j->next)
                if (j->task == t)
                        return j;
        return NULL;
}

static void mark_unstarted(Context *c, const char *run_id, const char *status, const char *message) {
        Db *db = context_store(c, NULL);
        if (!db)
                return;
        int r = store_run_finish(db, run_id, status, message, "{}", now_realtime(), 0);
        if (r < 0) {
                log_warning("Failed to close run %s as %s: %s", run_id, status, db_error(db));
                context_store_failed(c, r);
        }
}


/* systemd finished the start job: the oneshot has run (or never started). Close what the
 * runner could not, and tell subscribers how it ended. */
static void job_completed(Context *c, StartJob *j, const char *result) {
        LogContext log = { .task = j->task->name, .run_id = j->run_id };
        _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };
        Db *db = context_store(c, NULL);
        int r = db ? store_run_get(db, j->run_id, &row) : -EHOSTDOWN;
        bool running = r > 0 && run_status_from_string(row.status) == RUN_RUNNING;

        if (running && row.pid == 0) {
                /* Never adopted: the runner did not start (condition, start limit, missing binary). */
                _cleanup_free_ char *msg = streq(result, "done")
                        ? xasprintf("Ignorée par systemd : %s n'a pas été exécutée (condition non remplie)", j->task->unit)
                        : xasprintf("systemd n'a pas pu exécuter %s (résultat du job : %s) : voir journalctl%s "
                                    "-u %s", j->task->unit, result, c->config.bus == BUS_USER ? " --user" : "",
                                    j->task->unit);
                bool skipped = streq(result, "done");
                const char *status = run_status_to_string(skipped ? RUN_SKIPPED : RUN_ERROR);
                mark_unstarted(c, j->run_id, status, msg);
                log_full(&log, skipped ? LOG_NOTICE : LOG_ERR, 0,
                         skipped ? MESSAGE_ID_TASK_SKIPPED : MESSAGE_ID_TASK_FAILED, status, NULL, "%s", msg);
                watch_emit_finished(c, j->task, j->run_id, status, msg);
        } else if (running)
                /* Adopted but the job is over: the runner died without closing its row. */
                run_interrupted(c, j->task, j->run_id);
        else if (r > 0)
                watch_emit_finished(c, j->task, j->run_id, row.status, row.message);
        else {
                log_warning("Run %s of %s ended (job %s) but its row cannot be read", j->run_id, j->task->name, result);
                watch_emit_finished(c, j->task, j->run_id, "error", "résultat inconnu : base de données indisponible");
        }
        log_run(&log, LOG_INFO, "Job of %s for run %s removed: %s", j->task->unit, j->run_id, result);
        job_free(c, j);
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (StartJob *j = c->jobs; j; j = j->next)
                if (j->job_path && streq(j->job_path, path)) {
                        job_completed(c, j, result);
                        return 0;
                }
        if (!task_by_unit(unit))
                return 0;
        /* May have overtaken its StartUnit reply: keep it for on_start_reply(). */
        unsigned i = c->stash_next++ % JOB_STASH_SIZE;
        free(c->stash[i].path);
        free(c->stash[i].result);
        c->stash[i].path = xstrdup(path);
        c->stash[i].result = xstrdup(result);
        return 0;
}

static int on_start_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        StartJob *j = userdata;
        Context *c = j->context;
        LogContext log = { .task = j->task->name, .run_id = j->run_id };
        const char *path;

        j->start_slot = sd_bus_slot_unref(j->start_slot);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e || sd_bus_message_read(reply, "o", &path) < 0) {
                _cleanup_free_ char *msg = xasprintf("systemd a refusé de démarrer %s : %s", j->task->unit,
                                                     e && e->message ? e->message : "réponse invalide");
                mark_unstarted(c, j->run_id, "error", msg);
                log_full(&log, LOG_ERR, 0, MESSAGE_ID_TASK_FAILED, "error", NULL, "%s", msg);
                (void) bus_reply_errorf(j->call, BUS_ERROR_SYSTEMD_UNAVAILABLE,
                                                  "systemd refused to start %s: %s", j->task->unit,
                                                  e && e->message ? e->message : "invalid reply");
                job_free(c, j);
                return 0;
        }
        j->job_path = xstrdup(path);
        /* Tie the pending row to this job: its runner adopts only the row made for its own start. */
        uint32_t job_id;
        Db *db = context_store(c, NULL);
        int r = manager_job_id_from_path(path, &job_id);
        if (r >= 0 && db)
                r = store_run_set_job(db, j->run_id, job_id);
        if (r < 0 || !db) {
                log_run(&log, LOG_WARNING, "Cannot tie run %s to job %s, its runner will record its own row: %s",
                        j->run_id, path, db ? db_error(db) : "store unavailable");
                if (db)
                        context_store_failed(c, r);
        }
        (void) sd_bus_reply_method_return(j->call, "s", j->run_id);
        j->call = sd_bus_message_unref(j->call);

        watch_emit_started(c, j->task, j->run_id, j->triggered_by);

        for (unsigned i = 0; i < JOB_STASH_SIZE; i++)
                if (c->stash[i].path && streq(c->stash[i].path, path)) {
                        _cleanup_free_ char *result = TAKE_PTR(c->stash[i].result);
                        c->stash[i].path = (free(c->stash[i].path), NULL);
                        job_completed(c, j, result);
                        break;
                }
        return 0;
}

static int method_run_task(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        const char *name, *email;
        _cleanup_free_ char *caller = NULL;
        uid_t uid;
        bool admin;
        int r = sd_bus_message_read(m, "ss", &name, &email);
        if (r < 0)
                return r;

        /* Identify (not yet authorize) first, so that every request, even a malformed one, is
         * journaled with its caller. */
        const Task *t = task_lookup(name);
        LogContext log = { .task = t ? t->name : NULL };
        r = caller_identity(m, &uid, &caller, &admin, c->config.admin_group);
        if (r < 0) {
                /* Typically a caller that hung up before we asked the bus who it was: nobody to
                 * authorize, so nothing is run. */
                log_full(&log, LOG_WARNING, r, NULL, NULL, NULL,
                         "RunTask from %s refused: cannot identify the caller: %m",
                         strempty(sd_bus_message_get_sender(m)));
                return sd_bus_error_set_errnof(error, r, "Cannot identify the caller: %s", strerror(-r));
        }
        if (!t) {
                _cleanup_free_ char *shown = printable(name, 64), *cut = utf8_strndup(name, 64);
                log_run(&log, LOG_NOTICE, "RunTask '%s' by %s (uid %u) refused: unknown task", shown, caller,
                        (unsigned) uid);
                return bus_error_setf(error, BUS_ERROR_UNKNOWN_TASK, "Unknown task '%s'. Valid tasks: %s.", cut,
                                      task_valid_names());
        }
        if (!email_valid(email)) {
                _cleanup_free_ char *shown = printable(email, 80), *cut = utf8_strndup(email, 80);
                log_run(&log, LOG_NOTICE, "RunTask %s by %s (uid %u) refused: invalid email address '%s'", t->name,
                        caller, (unsigned) uid, shown);
                return bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid email address '%s': expected name@domain.tld (at most %d bytes) "
                                         "or an empty string.", cut, EMAIL_MAX);
        }
        if (!admin) {
                log_run(&log, LOG_WARNING, "RunTask %s refused: caller %s (uid %u) is neither root nor in group %s",
                        t->name, caller, (unsigned) uid, c->config.admin_group);
                return bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Only root and members of group %s may run tasks (caller: %s).",
                                         c->config.admin_group, caller);
        }

        StartJob *busy = job_for_task(c, t);
        if (busy || task_busy(&c->config, c->bus, t)) {
                _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };
                Db *db = busy ? NULL : context_store(c, NULL);
                const char *id = busy ? busy->run_id
                                      : db && store_run_last(db, t->name, "running", NULL, &row) > 0 ? row.id : "inconnu";
                log_run(&log, LOG_INFO, "RunTask %s by %s (uid %u, email %s) refused: already running (run %s)",
                        t->name, caller, (unsigned) uid, isempty(email) ? "-" : email, id);
                return bus_error_setf(error, BUS_ERROR_ALREADY_RUNNING, "%s is already running (run %s).", t->name, id);
        }

        Db *db = context_store(c, error);
        if (!db)
                return -EHOSTDOWN;
        /* Another host sharing the store runs it (its lease is live). */
        TaskLeaseHolder holder;
        if (task_lease_get(db, t, &holder) > 0 && !streq(holder.host, c->host)) {
                log_run(&log, LOG_INFO, "RunTask %s by %s (uid %u, email %s) refused: running on host %s (run %s)",
                        t->name, caller, (unsigned) uid, isempty(email) ? "-" : email, holder.host, holder.run_id);
                return bus_error_setf(error, BUS_ERROR_ALREADY_RUNNING, "%s is already running on host %s (run %s).",
                                         t->name, holder.host, holder.run_id);
        }

        _cleanup_(job_freep) StartJob *j = xmalloc(sizeof *j);
        *j = (StartJob) { .context = c, .task = t, .call = sd_bus_message_ref(m),
                          .triggered_by = run_trigger_to_string(isempty(email) ? TRIGGER_API : TRIGGER_MANUAL) };
        run_id_new(j->run_id);
        usec_t now = now_realtime();
        RunRow row = {
                .id = j->run_id,
                .task_name = (char *) t->name,
                .task_label = (char *) t->label,
                .started_at = now,
                .status = (char *) run_status_to_string(RUN_RUNNING),
                .message = (char *) "En attente du démarrage par systemd",
                .triggered_by = (char *) j->triggered_by,
                .triggered_by_user = isempty(email) ? caller : (char *) email,
                .host = c->host,
                .has_caller_uid = true,
                .caller_uid = uid,
                .caller_name = caller,
        };
        r = store_run_insert(db, &row);
        if (r < 0) {
                bus_error_setf(error, BUS_ERROR_STORE_UNAVAILABLE,
                                  "Cannot record the run in scheduler_logs (%s): retry later.", db_error(db));
                context_store_failed(c, r);
                return r;
        }
        r = sd_bus_call_method_async(c->bus, &j->start_slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "StartUnit", on_start_reply, j, "ss",
                                     t->unit, "replace");
        if (r < 0) {
                mark_unstarted(c, j->run_id, "error", "systemd injoignable : la tâche n'a pas été démarrée");
                return bus_error_setf(error, BUS_ERROR_SYSTEMD_UNAVAILABLE,
                                         "Cannot ask systemd to start %s: %s", t->unit, strerror(-r));
        }
        log_full(&(LogContext) { .task = t->name, .run_id = j->run_id, .trigger = j->triggered_by }, LOG_NOTICE, 0,
                 NULL, NULL, NULL, "RunTask %s by %s (uid %u, email %s): run %s, starting %s", t->name, caller,
                 (unsigned) uid, isempty(email) ? "-" : email, j->run_id, t->unit);
        /* Listed, hence owned by the context, from here on. */
        j->next = c->jobs;
        c->jobs = TAKE_PTR(j);
        return 1; /* replied from on_start_reply() */
}

static int append_str(sd_bus_message *reply, const char *key, const char *value) {
        if (!value)
                return 0;
        return sd_bus_message_append(reply, "{sv}", key, "s", value);
}

static int append_time(sd_bus_message *reply, const char *key, usec_t t) {
        char buf[RFC3339_MAX];
        return t ? append_str(reply, key, format_local_rfc3339(t, buf)) : 0;
}

static int append_run(sd_bus_message *reply, const RunRow *row) {
        int r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        struct { const char *key, *value; } strs[] = {
                { "id", row->id }, { "task_name", row->task_name }, { "task_label", row->task_label },
                { "status", row->status }, { "message", row->message }, { "stats", row->stats },
                { "triggered_by", row->triggered_by }, { "triggered_by_user", row->triggered_by_user },
                { "invocation_id", row->invocation_id }, { "host", row->host },
        };
        for (size_t i = 0; i < ELEMENTSOF(strs) && r >= 0; i++)
                r = append_str(reply, strs[i].key, strs[i].value);
        if (r >= 0)
                r = append_str(reply, "triggered_by_name", row->triggered_by_name);
        if (r >= 0)
                r = append_time(reply, "started_at", row->started_at);
        if (r >= 0)
                r = append_time(reply, "completed_at", row->completed_at);
        if (r >= 0)
                r = append_time(reply, "created_at", row->created_at);
        if (r >= 0 && row->duration_seconds >= 0)
                r = sd_bus_message_append(reply, "{sv}", "duration_seconds", "x", row->duration_seconds);
        if (r >= 0 && row->pid > 0)
                r = sd_bus_message_append(reply, "{sv}", "pid", "x", row->pid);
        if (r >= 0 && row->has_caller_uid)
                r = sd_bus_message_append(reply, "{sv}", "caller_uid", "u", row->caller_uid);
        if (r >= 0)
                r = append_str(reply, "caller_name", row->caller_name);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* Runs newest first, limit clamped (0 means 20), optionally of one task. */
static int reply_runs(Context *c, sd_bus_message *m, const Task *t, uint32_t limit, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(db_cursor_freep) DbCursor *cur = NULL;

        if (limit == 0)
                limit = GETLOGS_DEFAULT;
        if (limit > GETLOGS_MAX)
                limit = GETLOGS_MAX;

        Db *db = context_store(c, error);
        if (!db)
                return -EHOSTDOWN;
        int r = store_runs_query(db, limit, t ? t->name : NULL, &cur);
        if (r >= 0)
                r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };
        while (r >= 0 && (r = db_cursor_next(cur)) > 0) {
                r = store_run_read(cur, &row);
                if (r >= 0) {
                        run_row_name_technician(&row, &c->config.settings);
                        r = append_run(reply, &row);
                }
        }
        if (r < 0) {
                if (db_cursor_free(TAKE_PTR(cur)), sd_bus_error_is_set(error))
                        return r;
                bus_error_setf(error, BUS_ERROR_STORE_UNAVAILABLE, "Cannot read scheduler_logs: %s", db_error(db));
                context_store_failed(c, r);
                return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_logs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        uint32_t limit;
        int r = sd_bus_message_read(m, "u", &limit);
        if (r < 0)
                return r;
        return reply_runs(c, m, NULL, limit, error);
}

static int method_get_task_logs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        const char *name;
        uint32_t limit;
        int r = sd_bus_message_read(m, "su", &name, &limit);
        if (r < 0)
                return r;
        const Task *t = isempty(name) ? NULL : task_lookup(name);
        if (!isempty(name) && !t) {
                _cleanup_free_ char *cut = utf8_strndup(name, 64);
                return bus_error_setf(error, BUS_ERROR_UNKNOWN_TASK, "Unknown task '%s'. Valid tasks: %s.", cut,
                                      task_valid_names());
        }
        return reply_runs(c, m, t, limit, error);
}

/* Running here (a start job, the unit, a terminal's runner) or on another host (its lease). */
static bool task_running(Context *c, Db *db, const Task *t) {
        TaskLeaseHolder holder;
        return job_for_task(c, t) || task_busy(&c->config, c->bus, t) || (db && task_lease_get(db, t, &holder) > 0);
}

static int append_task(Context *c, Db *db, sd_bus_message *reply, const Task *t, const TaskHistory *h) {
        const RunRow *last = &h->last, *ok = &h->last_ok;
        usec_t next = 0;

        int r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "name", "s", t->name, "label", "s", t->label,
                                          "unit", "s", t->unit, "schedule", "s", t->schedule);
        if (r >= 0 && manager_timer_next_elapse(c->bus, t->timer, &next) >= 0)
                r = append_time(reply, "next_run", next);
        if (r >= 0)
                r = append_str(reply, "last_status", last->status);
        if (r >= 0)
                r = append_str(reply, "last_run_id", last->id);
        if (r >= 0)
                r = append_time(reply, "last_started_at", last->started_at);
        if (r >= 0)
                r = append_time(reply, "last_success_at", ok->started_at);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "running", "b", task_running(c, db, t));
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int method_list_tasks(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Db *db = context_store(c, error);
        if (!db)
                return -EHOSTDOWN;
        int r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (int i = 0; r >= 0 && i < _TASK_MAX; i++) {
                _cleanup_(task_history_clear) TaskHistory h = {};
                const Task *t = task_get((TaskId) i);

                /* A store failure must not read as "never run": say so, and drop a dead link. */
                int q = store_task_history(db, t->name, &h);
                if (q < 0) {
                        bus_error_setf(error, BUS_ERROR_STORE_UNAVAILABLE, "Cannot read scheduler_logs: %s",
                                          db_error(db));
                        context_store_failed(c, q);
                        return q;
                }
                r = append_task(c, db, reply, t, &h);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable scheduler_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* Unprivileged on purpose: the bus policy and method_run_task() decide who may run. */
        SD_BUS_METHOD_WITH_ARGS("RunTask", SD_BUS_ARGS("s", task, "s", user_email), SD_BUS_RESULT("s", run_id),
                                method_run_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLogs", SD_BUS_ARGS("u", limit), SD_BUS_RESULT("aa{sv}", logs), method_get_logs,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTasks", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", tasks), method_list_tasks,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTaskLogs", SD_BUS_ARGS("s", task, "u", limit), SD_BUS_RESULT("aa{sv}", logs),
                                method_get_task_logs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Subscribe", NULL, NULL, method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unsubscribe", NULL, NULL, method_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("TaskStarted", SD_BUS_ARGS("s", task, "s", run_id, "s", triggered_by), 0),
        SD_BUS_SIGNAL_WITH_ARGS("TaskFinished", SD_BUS_ARGS("s", task, "s", run_id, "s", status, "s", message), 0),
        SD_BUS_VTABLE_END,
};

int bus_api_register(Context *c) {
        int r = sd_bus_add_object_vtable(c->bus, NULL, BUS_PATH, BUS_INTERFACE, scheduler_vtable, c);
        if (r < 0)
                return r;
        r = watch_register(c);
        if (r < 0)
                return r;
        /* Before any StartUnit: a JobRemoved must never arrive unheard. */
        return sd_bus_match_signal(c->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                   "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, c);
}
