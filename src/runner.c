/* SPDX-License-Identifier: MIT */
/* runner.c — the task runner. Whoever started it (timer, daemon, systemctl, a terminal), the
 * runner owns its scheduler_logs row from `running` to a final status, and a run can never be
 * left `running` by a dead process for longer than the next run of the same task. */
#include "runner.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <time.h>

#include "manager.h"
#include "slot-guard.h"
#include "task-lock.h"

#include <systemd/sd-daemon.h>

/* A daemon's pending row is adopted only if recent; older ones are reaped (the start never
 * reached a runner). */
#define PENDING_ADOPT_WINDOW_USEC (10 * 60 * USEC_PER_SEC)

/* Signal-handler state is the one process-wide mutable thing: handlers can reach nothing else. */
static volatile sig_atomic_t cancel_requested;

static void on_cancel_signal(int sig) {
        cancel_requested = sig;
}

void task_result_clear(TaskResult *result) {
        free(result->message);
        cJSON_Delete(result->stats);
        *result = (TaskResult) {};
}

bool run_cancelled(const RunContext *ctx) {
        assert(ctx);
        return is_cancelled(ctx->cancelled);
}

void task_result_set(TaskResult *result, RunStatus status, const char *fmt, ...) {
        assert(result);
        va_list ap;
        va_start(ap, fmt);
        char *m = xvasprintf(fmt, ap);
        va_end(ap);
        free(result->message);
        result->message = m;
        result->status = status;
}

static const char *status_message_id(RunStatus status) {
        switch (status) {
        case RUN_SUCCESS:
                return MESSAGE_ID_TASK_SUCCEEDED;
        case RUN_WARNING:
                return MESSAGE_ID_TASK_WARNING;
        case RUN_SKIPPED:
                return MESSAGE_ID_TASK_SKIPPED;
        default:
                return MESSAGE_ID_TASK_FAILED;
        }
}

static int status_priority(RunStatus status) {
        return status == RUN_ERROR ? LOG_ERR : status == RUN_WARNING ? LOG_WARNING : LOG_NOTICE;
}

/* The daemon ties its pending row to the start job StartUnit returned, a moment after the
 * job was queued: a runner that sees an untied row this young waits this long for the tie. */
#define TIE_WAIT_USEC (3 * USEC_PER_SEC)
#define TIE_POLL_USEC (100 * USEC_PER_MSEC)
#define UNTIED_RECENT_USEC (60 * USEC_PER_SEC)

/* Adopts the daemon's pending row made for our own start job, if there is one. */
static int adopt_own_row(RunContext *ctx, const char *host, const char *invocation, RunRow *adopted) {
        const char *task = ctx->task->name;
        usec_t now = now_realtime();
        int r = store_run_adopt(ctx->db, task, ctx->job_id, now - PENDING_ADOPT_WINDOW_USEC, invocation, host,
                                getpid(), adopted);
        if (r != 0 || ctx->job_id == 0)
                return r;
        int64_t untied = 0;
        r = store_run_pending_untied(ctx->db, task, host, now - UNTIED_RECENT_USEC, &untied);
        if (r < 0 || untied == 0)
                return r;
        for (usec_t waited = 0; waited < TIE_WAIT_USEC; waited += TIE_POLL_USEC) {
                (void) usleep(TIE_POLL_USEC);
                r = store_run_adopt(ctx->db, task, ctx->job_id, now - PENDING_ADOPT_WINDOW_USEC, invocation, host,
                                    getpid(), adopted);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* Under systemd: adopt the daemon's pending row made for this very start job, else ask whether
 * our timer started us. A row made for another start — or left by a daemon that died before
 * StartUnit — is never taken: it would record a timer's or a person's run as someone else's. */
static RunTrigger detect_trigger(RunContext *ctx, const char *host, RunRow *adopted, int *adopt_result) {
        const Task *task = ctx->task;
        const char *invocation = getenv("INVOCATION_ID");
        *adopt_result = 0;
        if (isempty(invocation))
                return TRIGGER_CLI;

        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r = manager_bus_open(ctx->config->bus, &bus);
        if (r >= 0) {
                r = manager_unit_job(bus, task->unit, &ctx->job_id);
                if (r >= 0)
                        ctx->job_known = true;
                else
                        log_warning_errno(r, "Cannot ask the service manager for the start job of %s, adopting no "
                                          "pending run: %m", task->unit);
        }
        *adopt_result = adopt_own_row(ctx, host, invocation, adopted);
        if (*adopt_result > 0) {
                /* The daemon wrote it; anything unexpected reads as a person's start. */
                RunTrigger t = run_trigger_from_string(adopted->triggered_by);
                return t == TRIGGER_NONE ? TRIGGER_MANUAL : t;
        }

        bool by_timer = false;
        r = bus ? manager_started_by_timer(bus, task->unit, task->timer, &by_timer) : r;
        if (r < 0)
                log_warning_errno(r, "Cannot ask the service manager whether %s was started by %s, counting "
                                  "the run as manual: %m", task->unit, task->timer);
        return by_timer ? TRIGGER_SCHEDULER : TRIGGER_MANUAL;
}

static int begin_run(RunContext *ctx, const char *host) {
        RunRow adopted = { .duration_seconds = -1 };
        int adopt_result;

        RunTrigger trigger = detect_trigger(ctx, host, &adopted, &adopt_result);
        ctx->trigger = trigger;
        ctx->log.trigger = run_trigger_to_string(trigger);
        if (adopt_result < 0) {
                run_row_clear(&adopted);
                return log_error_errno(adopt_result, "Failed to look for a pending run of %s: %s", ctx->task->name,
                                       db_error(ctx->db));
        }
        if (adopt_result > 0) {
                snprintf(ctx->run_id, sizeof ctx->run_id, "%s", adopted.id);
                ctx->started_at = adopted.started_at;
                log_full(&ctx->log, LOG_NOTICE, 0, MESSAGE_ID_TASK_STARTED, "running", NULL,
                         "%s: démarrage (exécution %s, %s%s%s)", ctx->task->label, ctx->run_id, ctx->log.trigger,
                         adopted.triggered_by_user ? " par " : "", strempty(adopted.triggered_by_user));
                run_row_clear(&adopted);
                return 0;
        }

        run_id_new(ctx->run_id);
        ctx->started_at = now_realtime();
        /* A terminal's run is recorded with the account that ran it (the real uid, never the
         * $USER it claims); a unit's start has no caller we can vouch for. */
        bool cli = trigger == TRIGGER_CLI;
        _cleanup_free_ char *caller = cli ? user_name_of(getuid()) : NULL;
        RunRow row = {
                .id = ctx->run_id,
                .task_name = (char *) ctx->task->name,
                .task_label = (char *) ctx->task->label,
                .started_at = ctx->started_at,
                .status = (char *) run_status_to_string(RUN_RUNNING),
                .triggered_by = (char *) ctx->log.trigger,
                .triggered_by_user = cli ? getenv("USER") : NULL,
                .invocation_id = getenv("INVOCATION_ID"),
                .host = (char *) host,
                .pid = getpid(),
                .has_caller_uid = cli,
                .caller_uid = cli ? getuid() : 0,
                .caller_name = caller,
        };
        int r = store_run_insert(ctx->db, &row);
        if (r < 0)
                return log_error_errno(r, "Failed to record the start of %s in scheduler_logs: %s",
                                       ctx->task->name, db_error(ctx->db));
        log_full(&ctx->log, LOG_NOTICE, 0, MESSAGE_ID_TASK_STARTED, "running", NULL,
                 "%s: démarrage (exécution %s, %s)", ctx->task->label, ctx->run_id, ctx->log.trigger);
        return 0;
}

static void reap_interrupted(RunContext *ctx, const char *host) {
        usec_t now = now_realtime();
        /* Under systemd our start job is the unit's only live one: a pending row tied to another
         * job, or still untied after the daemon had its moment to tie it, will never run. */
        bool systemd = ctx->job_known;
        int r = store_run_reap(ctx->db, ctx->task->name, host, ctx->run_id[0] ? ctx->run_id : NULL,
                               systemd ? (int64_t) ctx->job_id : STORE_LIVE_JOB_UNKNOWN,
                               now - (systemd ? TIE_WAIT_USEC : PENDING_ADOPT_WINDOW_USEC), now);
        if (r < 0)
                log_warning("Failed to mark interrupted runs of %s, ignoring: %s", ctx->task->name, db_error(ctx->db));
        else if (r > 0)
                log_run(&ctx->log, LOG_WARNING, "%d exécution(s) interrompue(s) de %s marquée(s) en erreur", r,
                        ctx->task->name);
}

/* The run's connection died (pooler or server restarted): a new one, to record the end and
 * release the lease. ctx->db is replaced (the old handle closed); true when it was. */
static bool store_reconnect(RunContext *ctx) {
        struct pg_conn *conn = db_pg_handle(ctx->db);
        if (!conn || PQstatus(conn) == CONNECTION_OK)
                return false;
        Db *fresh = NULL;
        int r = store_open(ctx->config, &fresh);
        if (r < 0) {
                log_warning("Cannot reconnect to the store to record the end of run %s: %s", ctx->run_id,
                            fresh ? db_error(fresh) : strerror(-r));
                db_close(fresh);
                return false;
        }
        db_close(ctx->db);
        ctx->db = fresh;
        return true;
}

static int finish_run(RunContext *ctx, TaskResult *result) {
        usec_t now = now_realtime();
        int64_t duration = (int64_t) ((now - ctx->started_at + USEC_PER_SEC / 2) / USEC_PER_SEC);
        _cleanup_free_ char *stats = cJSON_PrintUnformatted(result->stats);

        const char *status = run_status_to_string(result->status);
        int r = store_run_finish(ctx->db, ctx->run_id, status, result->message, stats, now, duration);
        if (r == -ECONNRESET && store_reconnect(ctx))
                r = store_run_finish(ctx->db, ctx->run_id, status, result->message, stats, now, duration);
        if (r < 0)
                log_error_errno(r, "Failed to record the end of run %s (%s) in scheduler_logs: %s", ctx->run_id,
                                status, db_error(ctx->db));

        (void) sd_notifyf(false, "STATUS=%s : %s", status, result->message);
        log_full(&ctx->log, status_priority(result->status), 0, status_message_id(result->status), status, NULL,
                 "%s: %s — %s (%" PRId64 " s)", ctx->task->label, status, result->message, duration);
        if (r < 0)
                return EXIT_TASK_FAILED;
        return result->status == RUN_ERROR ? EXIT_TASK_FAILED : EXIT_TASK_OK;
}

/* A second scheduled run of a slot that already succeeded is refused here too, under the task
 * lock and with the store in hand: should-run may have been unable to decide (no credentials in
 * ExecCondition= on systemd 252), and a guard that fails open would run the day twice. True when
 * *result now says `skipped`. */
static bool refuse_done_slot(RunContext *ctx, const Slot *slot, TaskResult *result) {
        if (ctx->trigger != TRIGGER_SCHEDULER)
                return false;
        int r = store_scheduled_success_between(ctx->db, ctx->task->name, slot->from, slot->to);
        if (r < 0) {
                log_run(&ctx->log, LOG_WARNING, "Cannot check whether the slot of %s already succeeded, running "
                        "it: %s", ctx->task->name, db_error(ctx->db));
                return false;
        }
        if (r == 0)
                return false;
        char d[16];
        task_result_set(result, RUN_SKIPPED, "Ignorée : le créneau du %s a déjà réussi ; ce déclenchement du "
                        "minuteur est en double (ExecCondition= n'a pas pu le vérifier).",
                        format_local_date(slot->day, d));
        return true;
}

/* After a scheduled run that succeeded (or found its slot done): the stamp lets should-run skip
 * the slot's next timer starts without reading the store. */
static void stamp_done_slot(RunContext *ctx, const Slot *slot, const TaskResult *result) {
        if (ctx->trigger != TRIGGER_SCHEDULER ||
            !(result->status == RUN_SUCCESS || result->status == RUN_WARNING || result->status == RUN_SKIPPED))
                return;
        int r = slot_stamp_write(ctx->config->state_dir, ctx->task, slot);
        if (r < 0)
                log_full(&ctx->log, LOG_WARNING, r, NULL, NULL, NULL,
                         "Failed to write the slot stamp of %s in %s/slots, ignoring (the next timer start checks "
                         "the store): %m", ctx->task->name, ctx->config->state_dir);
}

/* Takes the task's cross-host lease (task-lock.h). 0: held, run the task. 1: not ours, *result
 * says why (skipped). -errno: the store failed (*result says so).
 * A timer's start whose lease a live host holds stands by: that host may die mid-run, and then
 * this one is the slot's catch-up. When the holder ends its run and releases the lease, the
 * standby records `skipped` naming it; when the lease expires instead (the holder died), the
 * standby takes it over, the dead run is closed as interrupted, and the task runs here. Any other
 * start (a person's) is told at once that another host runs the task. */
static int take_lease(RunContext *ctx, const char *host, unsigned seconds, TaskResult *result) {
        const char *label = ctx->task->label;
        char waited_host[TASK_LEASE_HOST_MAX] = "", waited_run[40] = "";
        bool standby = ctx->trigger == TRIGGER_SCHEDULER;

        for (;;) {
                TaskLeaseHolder other = {};
                int r = task_lease_take(ctx->db, ctx->task, host, ctx->run_id, seconds, &other);
                if (r == 0) {
                        if (other.run_id[0])
                                log_run(&ctx->log, LOG_WARNING, "%s : bail repris de l'hôte %s, dont l'exécution %s "
                                        "s'est arrêtée sans finir (marquée interrompue)", label, other.host,
                                        other.run_id);
                        if (waited_run[0] && !other.host[0]) {
                                /* The holder ended its run and released the lease. */
                                (void) task_lease_release(ctx->db, ctx->task, ctx->run_id);
                                task_result_set(result, RUN_SKIPPED, "%s a été exécutée par l'hôte %s (exécution %s) : "
                                                "rien n'a été fait ici", label, waited_host, waited_run);
                                return 1;
                        }
                        return 0;
                }
                if (r != -EBUSY) {
                        task_result_set(result, RUN_ERROR, "Impossible de prendre le bail de %s dans la base (%s) : %s. "
                                        "Vérifiez la connexion (DATABASE_URL).", ctx->task->name, strerror(-r),
                                        db_error(ctx->db));
                        return r;
                }
                if (!standby || run_cancelled(ctx)) {
                        task_result_set(result, RUN_SKIPPED, "%s est déjà en cours sur l'hôte %s (exécution %s) : rien "
                                        "n'a été lancé ici", label, other.host, other.run_id);
                        return 1;
                }
                if (!streq(waited_run, other.run_id)) {
                        snprintf(waited_host, sizeof waited_host, "%s", other.host);
                        snprintf(waited_run, sizeof waited_run, "%s", other.run_id);
                        log_run(&ctx->log, LOG_NOTICE, "%s est en cours sur l'hôte %s (exécution %s) : en attente de sa "
                                "fin ; si cet hôte s'arrête, son bail expire (%u s) et la tâche reprend ici", label,
                                other.host, other.run_id, seconds);
                        (void) sd_notifyf(false, "STATUS=%s : en attente de l'hôte %s (exécution %s)", label,
                                          other.host, other.run_id);
                }
                /* A signal cuts the sleep short; the loop then reports the skip. */
                (void) nanosleep(&(struct timespec) { .tv_sec = 1 }, NULL);
        }
}

static void install_cancel_handlers(void) {
        struct sigaction sa = { .sa_handler = on_cancel_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

int runner_run(const Config *config, const Task *task, TaskRunFunc run, const RunOptions *options) {
        assert(config && task && run && options);
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_close_ int lock_fd = -1;
        char host[256];
        RunContext ctx = {
                .config = config,
                .task = task,
                .options = *options,
                .log = { .task = task->name },
                .cancelled = &cancel_requested,
        };

        host_name(host);
        install_cancel_handlers();

        int r = store_open(config, &db);
        if (r < 0) {
                log_full(&ctx.log, LOG_ERR, r, MESSAGE_ID_TASK_FAILED, "error", NULL,
                         "%s: impossible d'ouvrir la base de données (%m) : %s. Vérifiez DATABASE_URL ou le "
                         "répertoire d'état %s.", task->label, db ? db_error(db) : "?", config->state_dir);
                return EXIT_TASK_FAILED;
        }
        ctx.db = db;

        r = task_lock_take(config, task, &lock_fd);
        if (r == -EBUSY) {
                log_run(&ctx.log, LOG_ERR, "%s est déjà en cours sur cet hôte : rien n'a été lancé. Attendez la fin "
                        "(journalctl GAZELLE_TASK=%s -f).", task->label, task->name);
                return EXIT_TASK_FAILED;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to take the lock of %s in the state directory %s: %m",
                                       task->name, config->state_dir),
                       EXIT_TASK_FAILED;

        /* Points at the id begin_run() fills in, so its "démarrage" entry carries it already. */
        ctx.log.run_id = ctx.run_id;
        r = begin_run(&ctx, host);
        if (r < 0)
                return EXIT_TASK_FAILED;
        /* The unit's StatusText changes once the row exists: gazelle-schedulerd, following the
         * unit for its subscribers, looks the run up by invocation id on exactly this change. */
        (void) sd_notifyf(false, "STATUS=%s : démarrage (exécution %s)", task->label, ctx.run_id);
        reap_interrupted(&ctx, host);

        _cleanup_(task_result_clear) TaskResult result = { .stats = cJSON_CreateObject() };
        Slot slot = slot_of(task, ctx.started_at);
        unsigned lease_seconds = ctx.config->lease_seconds;
        _cleanup_(task_lease_keeper_stopp) TaskLeaseKeeper *keeper = NULL;
        /* The slot is checked under the lease: another host may have completed it between this
         * host's ExecCondition and now. */
        r = take_lease(&ctx, host, lease_seconds, &result);
        if (r == 0 && !refuse_done_slot(&ctx, &slot, &result)) {
                r = task_lease_keeper_start(config, task, ctx.run_id, lease_seconds, &cancel_requested, &keeper);
                if (r < 0)
                        task_result_set(&result, RUN_ERROR, "Impossible de lancer le renouvellement du bail : %s",
                                        strerror(-r));
                else
                        r = run(&ctx, &result);
        }
        bool lease_lost = task_lease_keeper_lost(keeper);
        keeper = task_lease_keeper_stop(keeper);
        if (r < 0 || result.status == RUN_STATUS_NONE) {
                if (!result.message)
                        task_result_set(&result, RUN_ERROR, "Échec : %s", strerror(-r));
                result.status = RUN_ERROR;
        }
        if (lease_lost)
                task_result_set(&result, RUN_ERROR, "Interrompue : le bail de la tâche a expiré et un autre hôte l'a "
                                "repris (connexion à la base perdue trop longtemps ?)");
        else if (cancel_requested && result.status != RUN_ERROR && result.status != RUN_SKIPPED)
                task_result_set(&result, RUN_ERROR, "Interrompue par le signal %s avant la fin",
                                sigabbrev_np(cancel_requested));
        int exit_code = finish_run(&ctx, &result);
        db = ctx.db; /* finish_run() may have replaced a lost connection */
        if (exit_code == EXIT_TASK_OK)
                stamp_done_slot(&ctx, &slot, &result);
        /* After the row: a standby that sees the lease go finds this run's final status. */
        r = task_lease_release(ctx.db, task, ctx.run_id);
        if (r < 0)
                log_warning("Failed to release the lease of %s, it expires in %u s: %s", task->name, lease_seconds,
                            db_error(ctx.db));
        return exit_code;
}
