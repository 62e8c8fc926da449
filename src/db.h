/* SPDX-License-Identifier: MIT */
/* db.h — one small SQL interface over SQLite and PostgreSQL. Callers write one SQL text with
 * $1…$n placeholders (both engines understand them), bind every value (never format SQL), and
 * read rows through a streaming cursor, so memory stays flat whatever the result size. Library
 * layer: returns -errno and keeps the engine's message for db_error(); never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct Db Db;
typedef struct DbCursor DbCursor;

typedef enum DbBackend {
        DB_SQLITE,
        DB_POSTGRESQL,
} DbBackend;

typedef enum DbValueType {
        DBV_NULL,
        DBV_TEXT,
        DBV_INT,
        DBV_BOOL,
} DbValueType;

typedef struct DbValue {
        DbValueType type;
        const char *s;
        int64_t i;
} DbValue;

#define DBV_TEXT_OR_NULL(x) ((DbValue) { .type = (x) ? DBV_TEXT : DBV_NULL, .s = (x) })
#define DBV_I(x) ((DbValue) { .type = DBV_INT, .i = (int64_t) (x) })
#define DBV_B(x) ((DbValue) { .type = DBV_BOOL, .i = !!(x) })
/* SQL NULL as a bound value. */
#define DB_NULL ((DbValue) { .type = DBV_NULL })
#define DB_PARAMS(...) ((const DbValue[]) { __VA_ARGS__ }), ELEMENTSOF(((const DbValue[]) { __VA_ARGS__ }))
#define DB_NO_PARAMS NULL, 0

/* SQLite: WAL, busy timeout, foreign keys; creates the file (mode 0600). */
int db_open_sqlite(const char *path, Db **ret);
/* PostgreSQL from a libpq connection string or URI (Supabase's works as is). */
int db_open_postgresql(const char *conninfo, Db **ret);
Db *db_close(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_close);

DbBackend db_backend(const Db *db);
/* The engine's last error text (bounded, never contains the connection string). */
const char *db_error(const Db *db);

/* Runs one statement; returns the number of rows changed (>= 0) or -errno. */
int db_exec(Db *db, const char *sql, const DbValue *params, size_t n_params);
/* Runs several ';'-separated statements without parameters (migrations only). */
int db_exec_script(Db *db, const char *sql);

int db_begin(Db *db);     /* a write transaction (SQLite: BEGIN IMMEDIATE) */
int db_commit(Db *db);
int db_rollback(Db *db);  /* safe to call when no transaction is open */

/* Starts a query; rows are fetched one at a time with db_cursor_next(). Only one cursor may be
 * open per connection, and no other statement may run on it until the cursor is freed. */
int db_query(Db *db, const char *sql, const DbValue *params, size_t n_params, DbCursor **ret);
/* 1 when a row is available, 0 at the end, -errno on error. */
int db_cursor_next(DbCursor *c);
int db_cursor_columns(const DbCursor *c);
const char *db_cursor_name(const DbCursor *c, int col);
/* NULL for SQL NULL. Valid until the next db_cursor_next(). */
const char *db_cursor_text(const DbCursor *c, int col);
int64_t db_cursor_int(const DbCursor *c, int col);
bool db_cursor_bool(const DbCursor *c, int col);
/* The column is a boolean in this engine (so that exporters can map t/f to 1/0). */
bool db_cursor_is_bool(const DbCursor *c, int col);
DbCursor *db_cursor_free(DbCursor *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(DbCursor *, db_cursor_free);

/* Convenience: first column of the first row as text (NULL → *ret = NULL); 0 when no row, 1 when
 * a row was read, -errno on error. */
int db_query_text(Db *db, const char *sql, const DbValue *params, size_t n_params, char **ret);
int db_query_int(Db *db, const char *sql, const DbValue *params, size_t n_params, int64_t *ret);

/* Engine handles, for the few things only one engine can do (SQLite backup API, COPY). */
struct sqlite3 *db_sqlite_handle(Db *db);
/* -errno for an SQLite result code (extended codes too): -EBUSY, -ENOSPC, -EACCES, -ENOENT,
 * -EBADMSG for a corrupt or foreign file, -EIO otherwise; 0 for SQLITE_OK/ROW/DONE. */
int db_sqlite_errno(int rc);
struct pg_conn *db_pg_handle(Db *db);

/* Backend implementation interface (db-sqlite.c, db-pg.c). */
typedef struct DbOps {
        Db *(*close)(Db *db);
        int (*exec)(Db *db, const char *sql, const DbValue *params, size_t n);
        int (*exec_script)(Db *db, const char *sql);
        int (*query)(Db *db, const char *sql, const DbValue *params, size_t n, DbCursor **ret);
        int (*next)(DbCursor *c);
        int (*columns)(const DbCursor *c);
        const char *(*name)(const DbCursor *c, int col);
        const char *(*text)(const DbCursor *c, int col);
        bool (*is_bool)(const DbCursor *c, int col);
        DbCursor *(*cursor_free)(DbCursor *c);
} DbOps;

struct Db {
        const DbOps *ops;
        DbBackend backend;
        bool in_transaction;
        const struct Secrets *secrets; /* masked in error() and in the messages the store writes */
        char error[512];
};

struct DbCursor {
        Db *db;
};

/* Sets the error text: secrets (and any URL's password) masked, one line, valid UTF-8. */
void db_set_error(Db *db, const char *fmt, ...) _printf_(2, 3);
/* Which secrets to mask from now on, the current error text included. */
void db_set_secrets(Db *db, const struct Secrets *secrets);
/* An owned copy of a message about to be stored, secrets masked (redact.h); NULL stays NULL. */
char *db_redact(const Db *db, const char *text);
