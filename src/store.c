/* SPDX-License-Identifier: MIT */
/* store.c — opening the configured store, run ids, and the scheduler_logs queries. One SQL
 * text serves both engines: timestamps are bound as fixed-width UTC ISO text (SQLite compares
 * them as text, PostgreSQL parses them into timestamptz) and read back through
 * parse_iso_utc(), which accepts both engines' output. */
#include "store.h"

#include <fcntl.h>
#include <unistd.h>
#include <systemd/sd-id128.h>

#include "migrate.h"

#define RUN_COLUMNS                                                                                      \
        "id, task_name, task_label, started_at, completed_at, duration_seconds, status, message, stats, " \
        "triggered_by, triggered_by_user, created_at, invocation_id, host, pid, caller_uid, caller_name, " \
        "systemd_job_id"

void run_row_clear(RunRow *row) {
        assert(row);
        free(row->id);
        free(row->task_name);
        free(row->task_label);
        free(row->status);
        free(row->message);
        free(row->stats);
        free(row->triggered_by);
        free(row->triggered_by_user);
        free(row->invocation_id);
        free(row->host);
        free(row->triggered_by_name);
        free(row->caller_name);
        *row = (RunRow) { .duration_seconds = -1 };
}

static int store_connect(const Config *c, bool create, Db **ret) {
        _cleanup_(db_closep) Db *db = NULL;
        int r;

        if (c->database_url)
                r = db_open_postgresql(c->database_url, &db);
        else if (!create && access(c->sqlite_path, F_OK) < 0)
                return -errno;
        else {
                r = create ? mkdir_p(c->state_dir, 0700) : 0;
                if (r < 0)
                        return r;
                r = db_open_sqlite(c->sqlite_path, &db);
        }
        if (db)
                db_set_secrets(db, c->secrets);
        /* On failure too: the engine's message travels with the half-open Db. */
        *ret = TAKE_PTR(db);
        return r;
}

int store_open(const Config *c, Db **ret) {
        assert(c && ret);
        int r = store_connect(c, true, ret);
        if (r < 0)
                return r;
        r = migrate_apply(*ret);
        return r < 0 ? r : 0;
}

int store_open_existing(const Config *c, Db **ret) {
        assert(c && ret);
        *ret = NULL;
        return store_connect(c, false, ret);
}

void run_id_new(char buf[static RUN_ID_MAX]) {
        sd_id128_t id;
        if (sd_id128_randomize(&id) < 0) {
                /* getrandom() cannot fail on a booted kernel; keep ids unique regardless. */
                id = (sd_id128_t) { .qwords = { now_realtime(), (uint64_t) getpid() } };
                id.bytes[6] = (id.bytes[6] & 0x0F) | 0x40;
                id.bytes[8] = (id.bytes[8] & 0x3F) | 0x80;
        }
        snprintf(buf, RUN_ID_MAX, SD_ID128_UUID_FORMAT_STR, SD_ID128_FORMAT_VAL(id));
}

bool run_id_valid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        }
        return true;
}

static DbValue ts_value(usec_t t, char buf[static ISO_UTC_MAX]) {
        return t ? DBV_TEXT_OR_NULL(format_iso_utc(t, buf)) : DB_NULL;
}

int store_run_insert(Db *db, const RunRow *row) {
        assert(db && row);
        char started[ISO_UTC_MAX], created[ISO_UTC_MAX];
        _cleanup_free_ char *message = db_redact(db, row->message);
        return db_exec(db,
                       "INSERT INTO scheduler_logs (id, task_name, task_label, started_at, status, message, stats, "
                       "triggered_by, triggered_by_user, created_at, invocation_id, host, pid, caller_uid, caller_name, "
                       "systemd_job_id) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                       DB_PARAMS(DBV_TEXT_OR_NULL(row->id), DBV_TEXT_OR_NULL(row->task_name),
                                 DBV_TEXT_OR_NULL(row->task_label), ts_value(row->started_at, started),
                                 DBV_TEXT_OR_NULL(row->status ? row->status : "running"),
                                 DBV_TEXT_OR_NULL(message), DBV_TEXT_OR_NULL(row->stats ? row->stats : "{}"),
                                 DBV_TEXT_OR_NULL(row->triggered_by), DBV_TEXT_OR_NULL(row->triggered_by_user),
                                 ts_value(row->created_at ? row->created_at : row->started_at, created),
                                 DBV_TEXT_OR_NULL(row->invocation_id), DBV_TEXT_OR_NULL(row->host),
                                 row->pid > 0 ? DBV_I(row->pid) : DB_NULL,
                                 row->has_caller_uid ? DBV_I(row->caller_uid) : DB_NULL,
                                 DBV_TEXT_OR_NULL(row->caller_name),
                                 row->systemd_job_id > 0 ? DBV_I(row->systemd_job_id) : DB_NULL));
}

int store_run_read(DbCursor *c, RunRow *row) {
        assert(c && row);
        run_row_clear(row);
#define COL_STR(i) (db_cursor_text(c, (i)) ? xstrdup(db_cursor_text(c, (i))) : NULL)
        row->id = COL_STR(0);
        row->task_name = COL_STR(1);
        row->task_label = COL_STR(2);
        row->status = COL_STR(6);
        /* Masked on the way out too: a row written before the redaction step existed (or by another
         * host) must not hand a secret to GetLogs, `logs` or a failure email. */
        row->message = db_redact(c->db, db_cursor_text(c, 7));
        row->stats = db_redact(c->db, db_cursor_text(c, 8));
        row->triggered_by = COL_STR(9);
        row->triggered_by_user = COL_STR(10);
        row->invocation_id = COL_STR(12);
        row->host = COL_STR(13);
        row->caller_name = COL_STR(16);
#undef COL_STR
        const int ts_cols[] = { 3, 4, 11 };
        usec_t *ts_fields[] = { &row->started_at, &row->completed_at, &row->created_at };
        for (size_t i = 0; i < ELEMENTSOF(ts_cols); i++) {
                const char *s = db_cursor_text(c, ts_cols[i]);
                if (s && parse_iso_utc(s, ts_fields[i]) < 0)
                        return -EBADMSG;
        }
        row->duration_seconds = db_cursor_text(c, 5) ? db_cursor_int(c, 5) : -1;
        row->pid = db_cursor_int(c, 14);
        row->has_caller_uid = db_cursor_text(c, 15) != NULL;
        row->caller_uid = (uint32_t) db_cursor_int(c, 15);
        row->systemd_job_id = (uint64_t) db_cursor_int(c, 17);
        return 0;
}

int store_run_adopt(Db *db, const char *task, uint32_t job_id, usec_t not_before, const char *invocation_id,
                    const char *host, pid_t pid, RunRow *row) {
        assert(db && row);
        char since[ISO_UTC_MAX];
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;

        if (job_id == 0)
                return 0; /* no job of ours: no row can be ours */
        /* One statement, so two runners can never claim the same row. */
        int r = db_query(db,
                         "UPDATE scheduler_logs SET invocation_id = $2, host = $3, pid = $4 "
                         "WHERE id = (SELECT id FROM scheduler_logs WHERE task_name = $1 AND status = 'running' "
                         "AND pid IS NULL AND invocation_id IS NULL AND systemd_job_id = $6 AND started_at >= $5 "
                         "ORDER BY started_at DESC LIMIT 1) "
                         "AND pid IS NULL RETURNING " RUN_COLUMNS,
                         DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(invocation_id), DBV_TEXT_OR_NULL(host),
                                   DBV_I(pid), DBV_TEXT_OR_NULL(format_iso_utc(not_before, since)), DBV_I(job_id)),
                         &c);
        if (r < 0)
                return r;
        r = db_cursor_next(c);
        if (r <= 0)
                return r;
        r = store_run_read(c, row);
        if (r < 0)
                return r;
        /* Drain so the UPDATE completes on engines that run RETURNING lazily. */
        while ((r = db_cursor_next(c)) > 0)
                ;
        return r < 0 ? r : 1;
}

int store_run_finish(Db *db, const char *id, const char *status, const char *message, const char *stats,
                     usec_t completed_at, int64_t duration_seconds) {
        assert(db);
        char completed[ISO_UTC_MAX];
        /* stats carries error texts too (a sync's "errors"): masked inside its JSON strings. */
        _cleanup_free_ char *safe = db_redact(db, message), *safe_stats = db_redact(db, stats);
        int r = db_exec(db,
                        "UPDATE scheduler_logs SET status = $2, message = $3, stats = $4, completed_at = $5, "
                        "duration_seconds = $6 WHERE id = $1",
                        DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(status), DBV_TEXT_OR_NULL(safe),
                                  DBV_TEXT_OR_NULL(safe_stats ? safe_stats : "{}"), ts_value(completed_at, completed),
                                  duration_seconds >= 0 ? DBV_I(duration_seconds) : DB_NULL));
        if (r == 0) {
                db_set_error(db, "scheduler_logs row %s does not exist", id);
                return -ENOENT;
        }
        return r < 0 ? r : 0;
}

int store_run_interrupted(Db *db, const char *id, usec_t now) {
        assert(db);
        return store_run_finish(db, id, "error", RUN_INTERRUPTED_MESSAGE, "{}", now, 0);
}

int store_run_close_interrupted(Db *db, const char *id, usec_t now) {
        assert(db);
        char completed[ISO_UTC_MAX];
        int r = db_exec(db,
                        "UPDATE scheduler_logs SET status = 'error', message = $2, completed_at = $3, "
                        "duration_seconds = 0 WHERE id = $1 AND status = 'running'",
                        DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(RUN_INTERRUPTED_MESSAGE),
                                  DBV_TEXT_OR_NULL(format_iso_utc(now, completed))));
        return r < 0 ? r : r > 0;
}

int store_run_reap(Db *db, const char *task, const char *host, const char *keep_id, int64_t live_job,
                   usec_t pending_before, usec_t now) {
        assert(db);
        char before[ISO_UTC_MAX], completed[ISO_UTC_MAX];
        return db_exec(db,
                       "UPDATE scheduler_logs SET status = 'error', message = $5, completed_at = $6 "
                       "WHERE task_name = $1 AND status = 'running' AND id <> $3 "
                       "AND (host = $2 OR host IS NULL) "
                       "AND (pid IS NOT NULL OR invocation_id IS NOT NULL OR started_at < $4 "
                       "OR (CAST($7 AS BIGINT) >= 0 AND systemd_job_id IS NOT NULL "
                       "AND systemd_job_id <> CAST($7 AS BIGINT)))",
                       DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(host),
                                 DBV_TEXT_OR_NULL(keep_id ? keep_id : "00000000-0000-0000-0000-000000000000"),
                                 DBV_TEXT_OR_NULL(format_iso_utc(pending_before, before)),
                                 DBV_TEXT_OR_NULL(RUN_INTERRUPTED_MESSAGE),
                                 DBV_TEXT_OR_NULL(format_iso_utc(now, completed)), DBV_I(live_job)));
}

int store_run_set_job(Db *db, const char *id, uint32_t job_id) {
        assert(db);
        return db_exec(db,
                       "UPDATE scheduler_logs SET systemd_job_id = $2 WHERE id = $1 AND status = 'running' "
                       "AND pid IS NULL",
                       DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_I(job_id)));
}

int store_run_pending_untied(Db *db, const char *task, const char *host, usec_t since, int64_t *ret) {
        assert(db && ret);
        char s[ISO_UTC_MAX];
        int r = db_query_int(db,
                             "SELECT count(*) FROM scheduler_logs WHERE task_name = $1 AND status = 'running' "
                             "AND pid IS NULL AND invocation_id IS NULL AND systemd_job_id IS NULL "
                             "AND (host = $2 OR host IS NULL) AND started_at >= $3",
                             DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(host),
                                       DBV_TEXT_OR_NULL(format_iso_utc(since, s))),
                             ret);
        return r < 0 ? r : 0;
}

int store_scheduled_success_between(Db *db, const char *task, usec_t from, usec_t to) {
        assert(db);
        char a[ISO_UTC_MAX], b[ISO_UTC_MAX];
        int64_t n = 0;
        int r = db_query_int(db,
                             "SELECT count(*) FROM scheduler_logs WHERE task_name = $1 "
                             "AND triggered_by = 'scheduler' AND status IN ('success', 'warning') "
                             "AND started_at >= $2 AND started_at < $3",
                             DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(format_iso_utc(from, a)),
                                       DBV_TEXT_OR_NULL(format_iso_utc(to, b))),
                             &n);
        return r < 0 ? r : n > 0;
}

int store_runs_query(Db *db, unsigned limit, const char *task, DbCursor **ret) {
        assert(db && ret);
        if (task)
                return db_query(db,
                                "SELECT " RUN_COLUMNS " FROM scheduler_logs WHERE task_name = $2 "
                                "ORDER BY started_at DESC LIMIT $1",
                                DB_PARAMS(DBV_I(limit), DBV_TEXT_OR_NULL(task)), ret);
        return db_query(db, "SELECT " RUN_COLUMNS " FROM scheduler_logs ORDER BY started_at DESC LIMIT $1",
                        DB_PARAMS(DBV_I(limit)), ret);
}

/* The first row of a run query into *row: 1 found, 0 none, -errno (query_result included). */
static int first_run(int query_result, DbCursor *c, RunRow *row) {
        if (query_result < 0)
                return query_result;
        int r = db_cursor_next(c);
        if (r <= 0)
                return r;
        r = store_run_read(c, row);
        return r < 0 ? r : 1;
}

int store_run_last(Db *db, const char *task, const char *status_a, const char *status_b, RunRow *row) {
        assert(db && row);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r;

        if (status_a)
                r = db_query(db,
                             "SELECT " RUN_COLUMNS " FROM scheduler_logs WHERE task_name = $1 "
                             "AND status IN ($2, $3) ORDER BY started_at DESC LIMIT 1",
                             DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(status_a),
                                       DBV_TEXT_OR_NULL(status_b ? status_b : status_a)),
                             &c);
        else
                r = db_query(db,
                             "SELECT " RUN_COLUMNS " FROM scheduler_logs WHERE task_name = $1 "
                             "ORDER BY started_at DESC LIMIT 1",
                             DB_PARAMS(DBV_TEXT_OR_NULL(task)), &c);
        return first_run(r, c, row);
}

int store_run_get(Db *db, const char *id, RunRow *row) {
        assert(db && row);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, "SELECT " RUN_COLUMNS " FROM scheduler_logs WHERE id = $1",
                         DB_PARAMS(DBV_TEXT_OR_NULL(id)), &c);
        return first_run(r, c, row);
}

int store_run_by_invocation(Db *db, const char *task, const char *invocation_id, RunRow *row) {
        assert(db && row);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db,
                         "SELECT " RUN_COLUMNS " FROM scheduler_logs WHERE task_name = $1 AND invocation_id = $2 "
                         "ORDER BY started_at DESC LIMIT 1",
                         DB_PARAMS(DBV_TEXT_OR_NULL(task), DBV_TEXT_OR_NULL(invocation_id)), &c);
        return first_run(r, c, row);
}

void task_history_clear(TaskHistory *h) {
        assert(h);
        run_row_clear(&h->last);
        run_row_clear(&h->last_ok);
}

int store_task_history(Db *db, const char *task, TaskHistory *ret) {
        assert(db && task && ret);
        *ret = (TaskHistory) { .last.duration_seconds = -1, .last_ok.duration_seconds = -1 };
        int r = store_run_last(db, task, NULL, NULL, &ret->last);
        if (r >= 0)
                r = store_run_last(db, task, run_status_to_string(RUN_SUCCESS), run_status_to_string(RUN_WARNING),
                                   &ret->last_ok);
        if (r < 0) {
                task_history_clear(ret);
                return r;
        }
        return 0;
}

void run_row_name_technician(RunRow *row, const Settings *settings) {
        assert(row && settings);
        const Technician *t = settings_find_technician_by_email(settings, row->triggered_by_user);
        if (t && !row->triggered_by_name)
                row->triggered_by_name = xstrdup(t->display_name);
}
