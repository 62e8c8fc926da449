/* SPDX-License-Identifier: MIT */
/* db-sqlite.c — the SQLite engine behind db.h: connection set-up (WAL, busy timeout, foreign
 * keys), $n parameter binding, a small prepared-statement cache, step-wise cursors. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "db.h"

#define STMT_CACHE_SIZE 32
#define BUSY_TIMEOUT_MS 10000

typedef struct SqliteDb {
        Db base;
        sqlite3 *handle;
        struct {
                const char *sql; /* identity of a string literal: the cache key */
                sqlite3_stmt *stmt;
        } cache[STMT_CACHE_SIZE];
        unsigned cache_next;
} SqliteDb;

typedef struct SqliteCursor {
        DbCursor base;
        sqlite3_stmt *stmt;
        const char *key;
} SqliteCursor;

static SqliteDb *sqlite_db(Db *db) {
        return (SqliteDb *) db;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);

int db_sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_INTERRUPT:
                return -EINTR;
        default:
                return -EIO;
        }
}

static int fail(SqliteDb *db, int rc) {
        db_set_error(&db->base, "SQLite: %s", sqlite3_errmsg(db->handle));
        return db_sqlite_errno(rc);
}

static int bind_params(SqliteDb *db, sqlite3_stmt *stmt, const DbValue *params, size_t n) {
        int rc;

        if ((size_t) sqlite3_bind_parameter_count(stmt) > n) {
                db_set_error(&db->base, "SQLite: statement has %d parameters, %zu bound",
                             sqlite3_bind_parameter_count(stmt), n);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                char name[24];
                snprintf(name, sizeof name, "$%zu", i + 1);
                int idx = sqlite3_bind_parameter_index(stmt, name);
                if (idx == 0)
                        continue; /* $n unused in this dialect's variant of the statement */
                switch (params[i].type) {
                case DBV_NULL:
                        rc = sqlite3_bind_null(stmt, idx);
                        break;
                case DBV_TEXT:
                        rc = sqlite3_bind_text(stmt, idx, params[i].s, -1, SQLITE_TRANSIENT);
                        break;
                case DBV_INT:
                case DBV_BOOL:
                        rc = sqlite3_bind_int64(stmt, idx, params[i].i);
                        break;
                default:
                        return -EINVAL;
                }
                if (rc != SQLITE_OK)
                        return fail(db, rc);
        }
        return 0;
}

/* Prepared statements are cached by the address of their SQL text (string literals in
 * practice); the text is compared too, so a reused heap address can never hit a wrong entry. */
static int prepare(SqliteDb *db, const char *sql, sqlite3_stmt **ret) {
        for (unsigned i = 0; i < STMT_CACHE_SIZE; i++)
                if (db->cache[i].sql == sql && db->cache[i].stmt && streq(sqlite3_sql(db->cache[i].stmt), sql)) {
                        *ret = TAKE_PTR(db->cache[i].stmt);
                        db->cache[i].sql = NULL;
                        return 0;
                }
        int rc = sqlite3_prepare_v3(db->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL);
        if (rc != SQLITE_OK)
                return fail(db, rc);
        if (!*ret) {
                db_set_error(&db->base, "SQLite: empty statement");
                return -EINVAL;
        }
        return 0;
}

static void release(SqliteDb *db, const char *sql, sqlite3_stmt *stmt) {
        if (!stmt)
                return;
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        unsigned slot = db->cache_next++ % STMT_CACHE_SIZE;
        sqlite3_finalize(db->cache[slot].stmt);
        db->cache[slot].sql = sql;
        db->cache[slot].stmt = stmt;
}

/* A (cached) statement with its parameters bound; given back to the cache when binding fails. */
static int prepare_bound(SqliteDb *db, const char *sql, const DbValue *params, size_t n, sqlite3_stmt **ret) {
        sqlite3_stmt *stmt = NULL;
        int r = prepare(db, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_params(db, stmt, params, n);
        if (r < 0) {
                release(db, sql, stmt);
                return r;
        }
        *ret = stmt;
        return 0;
}

static int sq_exec(Db *base, const char *sql, const DbValue *params, size_t n) {
        SqliteDb *db = sqlite_db(base);
        sqlite3_stmt *stmt;
        int rc, r = prepare_bound(db, sql, params, n, &stmt);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                ;
        r = rc == SQLITE_DONE ? sqlite3_changes(db->handle) : fail(db, rc);
        release(db, sql, stmt);
        return r;
}

static int sq_exec_script(Db *base, const char *sql) {
        SqliteDb *db = sqlite_db(base);
        char *err = NULL;
        int rc = sqlite3_exec(db->handle, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                db_set_error(base, "SQLite: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return db_sqlite_errno(rc);
        }
        return 0;
}

static int sq_query(Db *base, const char *sql, const DbValue *params, size_t n, DbCursor **ret) {
        sqlite3_stmt *stmt;
        int r = prepare_bound(sqlite_db(base), sql, params, n, &stmt);
        if (r < 0)
                return r;
        SqliteCursor *c = xmalloc(sizeof *c);
        *c = (SqliteCursor) { .base.db = base, .stmt = stmt, .key = sql };
        *ret = &c->base;
        return 0;
}

static int sq_next(DbCursor *base) {
        SqliteCursor *c = (SqliteCursor *) base;
        int rc = sqlite3_step(c->stmt);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return fail(sqlite_db(base->db), rc);
}

static int sq_columns(const DbCursor *base) {
        return sqlite3_column_count(((const SqliteCursor *) base)->stmt);
}

static const char *sq_name(const DbCursor *base, int col) {
        return sqlite3_column_name(((const SqliteCursor *) base)->stmt, col);
}

static const char *sq_text(const DbCursor *base, int col) {
        return (const char *) sqlite3_column_text(((const SqliteCursor *) base)->stmt, col);
}

static bool sq_is_bool(const DbCursor *base, int col) {
        return false;
}

static DbCursor *sq_cursor_free(DbCursor *base) {
        SqliteCursor *c = (SqliteCursor *) base;
        release(sqlite_db(base->db), c->key, c->stmt);
        free(c);
        return NULL;
}

static Db *sq_close(Db *base) {
        SqliteDb *db = sqlite_db(base);
        for (unsigned i = 0; i < STMT_CACHE_SIZE; i++)
                sqlite3_finalize(db->cache[i].stmt);
        sqlite3_close_v2(db->handle);
        free(db);
        return NULL;
}

static const DbOps sqlite_ops = {
        .close = sq_close,
        .exec = sq_exec,
        .exec_script = sq_exec_script,
        .query = sq_query,
        .next = sq_next,
        .columns = sq_columns,
        .name = sq_name,
        .text = sq_text,
        .is_bool = sq_is_bool,
        .cursor_free = sq_cursor_free,
};

/* Switching a new file to WAL takes an exclusive lock while the statement already holds a
 * shared one, so SQLite returns SQLITE_BUSY at once instead of calling the busy handler: when
 * several processes open a fresh store together, all but one would fail. Wait for our turn
 * within the usual busy timeout. (journal_mode returns a row; sqlite3_exec discards it.) */
static int set_wal(SqliteDb *db) {
        for (unsigned waited_ms = 0;; waited_ms += 5) {
                int rc = sqlite3_exec(db->handle, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        return 0;
                if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= BUSY_TIMEOUT_MS)
                        return fail(db, rc);
                sqlite3_sleep(5);
        }
}

/* On failure *ret still receives the half-open Db, which carries the reason in db_error():
 * callers report it, then db_close() it like any other. */
int db_open_sqlite(const char *path, Db **ret) {
        SqliteDb *db = xmalloc(sizeof *db);
        *db = (SqliteDb) { .base = { .ops = &sqlite_ops, .backend = DB_SQLITE } };
        Db *base = &db->base;
        int r;

        *ret = base;
        mode_t old = umask(0077);
        int rc = sqlite3_open_v2(path, &db->handle,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        umask(old);
        if (rc != SQLITE_OK) {
                if (!db->handle) {
                        db_set_error(base, "SQLite: %s", sqlite3_errstr(rc));
                        return -ENOMEM;
                }
                return fail(db, rc);
        }
        sqlite3_extended_result_codes(db->handle, 1);
        sqlite3_busy_timeout(db->handle, BUSY_TIMEOUT_MS);

        /* WAL lets readers (the daemon, the backup) run beside a writing task without blocking it. */
        r = set_wal(db);
        if (r < 0)
                return r;
        return sq_exec_script(base, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
}

sqlite3 *db_sqlite_handle(Db *db) {
        return db && db->backend == DB_SQLITE ? sqlite_db(db)->handle : NULL;
}
