/* SPDX-License-Identifier: MIT */
/* sync-sqlite.c — the SQLite page writer of sync.c (sync-store.h): per table, an UPDATE of
 * synced_at by id (changes() tells whether the row existed) and a one-row upsert that changes
 * only rows whose API-owned columns differ, both prepared once and bound by position; the last
 * parameter is the row's keep mask (bit c: column c keeps its stored value). Runs inside the
 * caller's transaction. Library layer: -errno, the message in db_error(); never logs. */
#include "sync-store.h"

#include <stdarg.h>

static int prepare(Db *db, const char *sql, sqlite3_stmt **ret) {
        sqlite3 *h = db_sqlite_handle(db);
        if (sqlite3_prepare_v3(h, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL) != SQLITE_OK) {
                db_set_error(db, "SQLite: %s", sqlite3_errmsg(h));
                return -EIO;
        }
        return 0;
}

static int prepare_all(Db *db, const SyncTable *t, SyncSqliteStmts *st) {
        if (st->touch && st->upsert)
                return 0;
        _cleanup_free_ char *touch = NULL;
        if (asprintf(&touch, "UPDATE %s SET synced_at = ?1 WHERE external_id = ?2", t->name) < 0)
                abort();

        char *up = strextendf(NULL, "INSERT INTO %s (", t->name);
        for (size_t c = 0; c < t->n_cols; c++)
                up = strextendf(up, "%s, ", t->cols[c]);
        up = strextendf(up, "synced_at) VALUES (");
        for (size_t c = 0; c < t->n_cols; c++)
                up = strextendf(up, "?%zu, ", c + 1);
        up = strextendf(up, "?%zu) ON CONFLICT (external_id) DO UPDATE SET ", t->n_cols + 1);
        size_t keep = t->n_cols + 2;
        for (size_t c = 1; c < t->n_cols; c++)
                up = strextendf(up, "%s = CASE WHEN (?%zu >> %zu) & 1 THEN %s.%s ELSE excluded.%s END, ", t->cols[c], keep,
                                c, t->name, t->cols[c], t->cols[c]);
        up = strextendf(up, "synced_at = excluded.synced_at%s WHERE ",
                               t->has_deleted_at ? ", deleted_at = NULL" : "");
        for (size_t c = 1; c < t->n_cols; c++)
                up = strextendf(up, "%s((?%zu >> %zu) & 1 = 0 AND %s.%s IS NOT excluded.%s)", c > 1 ? " OR " : "", keep,
                                c, t->name, t->cols[c], t->cols[c]);
        if (t->has_deleted_at)
                up = strextendf(up, " OR %s.deleted_at IS NOT NULL", t->name);

        int r = prepare(db, touch, &st->touch);
        if (r >= 0)
                r = prepare(db, up, &st->upsert);
        free(up);
        if (r < 0)
                sync_sqlite_stmts_clear(st);
        return r;
}

static int bind(sqlite3_stmt *s, int idx, const DbValue *v) {
        switch (v->type) {
        case DBV_TEXT:
                return v->s ? sqlite3_bind_text(s, idx, v->s, -1, SQLITE_STATIC) : sqlite3_bind_null(s, idx);
        case DBV_INT:
                return sqlite3_bind_int64(s, idx, v->i);
        case DBV_BOOL:
                return sqlite3_bind_int(s, idx, v->i ? 1 : 0);
        case DBV_NULL:
        default:
                return sqlite3_bind_null(s, idx);
        }
}

/* Steps a bound statement to completion; the rows it changed, or -EIO. */
static int step(Db *db, sqlite3_stmt *s) {
        sqlite3 *h = db_sqlite_handle(db);
        int rc = sqlite3_step(s);
        int changes = sqlite3_changes(h);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE) {
                db_set_error(db, "SQLite: %s", sqlite3_errmsg(h));
                return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_BUSY ? -EBUSY : -EIO;
        }
        return changes;
}

int sync_sqlite_write(Db *db, const SyncTable *t, SyncSqliteStmts *stmts, const DbValue *vals, size_t n,
                      const char *synced_at, unsigned *ret_existed, unsigned *ret_changed) {
        unsigned existed = 0, changed = 0;
        int r = prepare_all(db, t, stmts);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                const DbValue *row = vals + i * t->n_cols;
                DbValue now = { .type = DBV_TEXT, .s = synced_at };

                if (bind(stmts->touch, 1, &now) != SQLITE_OK || bind(stmts->touch, 2, &row[0]) != SQLITE_OK)
                        goto bind_failed;
                r = step(db, stmts->touch);
                if (r < 0)
                        return r;
                existed += r > 0;

                for (size_t c = 0; c < t->n_cols; c++)
                        if (bind(stmts->upsert, (int) c + 1, &row[c]) != SQLITE_OK)
                                goto bind_failed;
                DbValue keep = DBV_I(sync_keep_mask(row, t->n_cols));
                if (bind(stmts->upsert, (int) t->n_cols + 1, &now) != SQLITE_OK ||
                    bind(stmts->upsert, (int) t->n_cols + 2, &keep) != SQLITE_OK)
                        goto bind_failed;
                r = step(db, stmts->upsert);
                if (r < 0)
                        return r;
                changed += r > 0;
        }
        *ret_existed = existed;
        *ret_changed = changed;
        return 0;

bind_failed:
        db_set_error(db, "SQLite: %s", sqlite3_errmsg(db_sqlite_handle(db)));
        sqlite3_reset(stmts->touch);
        sqlite3_reset(stmts->upsert);
        return -EIO;
}

void sync_sqlite_stmts_clear(SyncSqliteStmts *stmts) {
        sqlite3_finalize(stmts->touch);
        sqlite3_finalize(stmts->upsert);
        *stmts = (SyncSqliteStmts) {};
}
