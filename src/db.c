/* SPDX-License-Identifier: MIT */
/* db.c — the engine-independent half of db.h: dispatch, transactions, convenience queries. */
#include "db.h"

#include "redact.h"

#include <stdarg.h>

void db_set_error(Db *db, const char *fmt, ...) {
        va_list ap;
        /* libpq quotes a malformed URI whole, password included: never keep that. */
        va_start(ap, fmt);
        _cleanup_free_ char *safe = redact_vformat(db->secrets, sizeof db->error - 1, fmt, ap);
        va_end(ap);
        snprintf(db->error, sizeof db->error, "%s", safe);
        /* Engines end messages with newlines; error text must fit on one journal line. */
        for (char *p = db->error; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = p[1] ? ' ' : 0;
}

void db_set_secrets(Db *db, const struct Secrets *secrets) {
        db->secrets = secrets;
        _cleanup_free_ char *safe = redact_cut(secrets, db->error, sizeof db->error - 1);
        snprintf(db->error, sizeof db->error, "%s", safe);
}

char *db_redact(const Db *db, const char *text) {
        return redact(db->secrets, text);
}

Db *db_close(Db *db) {
        return db ? db->ops->close(db) : NULL;
}

DbBackend db_backend(const Db *db) {
        return db->backend;
}

const char *db_error(const Db *db) {
        return db->error[0] ? db->error : "unknown database error";
}

int db_exec(Db *db, const char *sql, const DbValue *params, size_t n) {
        return db->ops->exec(db, sql, params, n);
}

int db_exec_script(Db *db, const char *sql) {
        return db->ops->exec_script(db, sql);
}

int db_begin(Db *db) {
        int r = db_exec(db, db->backend == DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", DB_NO_PARAMS);
        if (r < 0)
                return r;
        db->in_transaction = true;
        /* A lock wait fails the transaction after 30 s instead of hanging the run. SET LOCAL: it
         * ends with the transaction, never reaching another client of a pooled connection. */
        if (db->backend == DB_POSTGRESQL && (r = db_exec(db, "SET LOCAL lock_timeout = '30s'", DB_NO_PARAMS)) < 0) {
                (void) db_rollback(db);
                return r;
        }
        return 0;
}

int db_commit(Db *db) {
        int r = db_exec(db, "COMMIT", DB_NO_PARAMS);
        if (r < 0) {
                (void) db_rollback(db);
                return r;
        }
        db->in_transaction = false;
        return 0;
}

int db_rollback(Db *db) {
        if (!db->in_transaction)
                return 0;
        db->in_transaction = false;
        char saved[sizeof db->error];
        memcpy(saved, db->error, sizeof saved);
        int r = db_exec(db, "ROLLBACK", DB_NO_PARAMS);
        /* The error that made us roll back is the one worth reporting. */
        memcpy(db->error, saved, sizeof saved);
        return r < 0 ? r : 0;
}

int db_query(Db *db, const char *sql, const DbValue *params, size_t n, DbCursor **ret) {
        return db->ops->query(db, sql, params, n, ret);
}

int db_cursor_next(DbCursor *c) {
        return c->db->ops->next(c);
}

int db_cursor_columns(const DbCursor *c) {
        return c->db->ops->columns(c);
}

const char *db_cursor_name(const DbCursor *c, int col) {
        return c->db->ops->name(c, col);
}

const char *db_cursor_text(const DbCursor *c, int col) {
        return c->db->ops->text(c, col);
}

int64_t db_cursor_int(const DbCursor *c, int col) {
        const char *s = db_cursor_text(c, col);
        return s ? strtoll(s, NULL, 10) : 0;
}

bool db_cursor_bool(const DbCursor *c, int col) {
        const char *s = db_cursor_text(c, col);
        return s && (streq(s, "t") || streq(s, "true") || (s[0] >= '1' && s[0] <= '9'));
}

bool db_cursor_is_bool(const DbCursor *c, int col) {
        return c->db->ops->is_bool(c, col);
}

DbCursor *db_cursor_free(DbCursor *c) {
        return c ? c->db->ops->cursor_free(c) : NULL;
}

int db_query_text(Db *db, const char *sql, const DbValue *params, size_t n, char **ret) {
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, sql, params, n, &c);
        if (r < 0)
                return r;
        r = db_cursor_next(c);
        if (r <= 0) {
                *ret = NULL;
                return r;
        }
        const char *s = db_cursor_text(c, 0);
        *ret = s ? xstrdup(s) : NULL;
        return 1;
}

int db_query_int(Db *db, const char *sql, const DbValue *params, size_t n, int64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r = db_query_text(db, sql, params, n, &s);
        if (r < 0)
                return r;
        *ret = s ? strtoll(s, NULL, 10) : 0;
        return r;
}
