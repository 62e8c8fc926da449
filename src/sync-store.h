/* sync-pg.h — the PostgreSQL page writer of sync.c: COPY into a temporary staging table, then
 * one UPDATE (ids seen) and one INSERT … ON CONFLICT (changed rows only). */
#pragma once

#include <inttypes.h>

#include "db.h"

typedef struct SyncPgTable {
        const char *name;        /* the store's table */
        const char *const *cols; /* API-owned columns; cols[0] is external_id */
        size_t n_cols;
        bool has_deleted_at;
} SyncPgTable;

/* Writes n rows (n * t->n_cols values, ids unique) inside the caller's transaction. *staged
 * tells whether this connection's staging table exists (set here; reset it after a rollback).
 * *ret_existed: rows that were already there; *ret_changed: rows inserted or changed. */
int sync_pg_write(Db *db, const SyncPgTable *t, const DbValue *vals, size_t n, const char *synced_at, bool *staged,
                  unsigned *ret_existed, unsigned *ret_changed);
