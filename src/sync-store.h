/* SPDX-License-Identifier: MIT */
/* sync-store.h — the page writers of sync.c, one per engine, for one table's rows of one page
 * inside the caller's transaction: mark the ids seen (synced_at), then insert new rows and
 * rewrite only rows whose API-owned columns differ. A value SYNC_KEEP (what Gazelle left out of a
 * partial answer) leaves the stored column as it is (a new row gets NULL). They report how many
 * rows already existed and how many were inserted or really changed, so the stats are exact.
 *   PostgreSQL: one statement, the rows as one JSON parameter (one round trip).
 *   SQLite: two statements prepared once per run, stepped per row (no round trips to save). */
#pragma once

#include <inttypes.h>
#include <sqlite3.h>

#include "db.h"

/* A column value that keeps the stored one: a NULL marked as "not said". */
#define SYNC_KEEP ((DbValue) { .type = DBV_NULL, .i = 1 })
static inline bool sync_value_keeps(const DbValue *v) {
        return v->type == DBV_NULL && v->i == 1;
}

/* Bit c set: column c of the row keeps its stored value. */
static inline int64_t sync_keep_mask(const DbValue *row, size_t n_cols) {
        int64_t mask = 0;
        for (size_t c = 1; c < n_cols && c < 63; c++)
                if (sync_value_keeps(&row[c]))
                        mask |= INT64_C(1) << c;
        return mask;
}

typedef struct SyncTable {
        const char *name;        /* the store's table */
        const char *const *cols; /* API-owned columns; cols[0] is external_id */
        size_t n_cols;
        bool has_deleted_at;
} SyncTable;

/* n rows of t->n_cols values each (at most 63 columns), ids unique. *sql_cache keeps the table's statement text
 * across pages (free it at the end). */
int sync_pg_write(Db *db, const SyncTable *t, char **sql_cache, const DbValue *vals, size_t n, const char *synced_at,
                  unsigned *ret_existed, unsigned *ret_changed);

/* The prepared statements of one table, kept across pages. */
typedef struct SyncSqliteStmts {
        sqlite3_stmt *touch, *upsert;
} SyncSqliteStmts;

int sync_sqlite_write(Db *db, const SyncTable *t, SyncSqliteStmts *stmts, const DbValue *vals, size_t n,
                      const char *synced_at, unsigned *ret_existed, unsigned *ret_changed);
void sync_sqlite_stmts_clear(SyncSqliteStmts *stmts);
