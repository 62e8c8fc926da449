/* SPDX-License-Identifier: MIT */
/* sync-pg.c — the PostgreSQL page writer of sync.c (sync-store.h): one statement per table and
 * page, one round trip whatever the page size. The page's rows travel as one JSON parameter
 * (json_populate_record gives them the table's own column types; "_keep" is a row's keep mask,
 * bit c: column c keeps its stored value); a CTE merges them with the stored rows, read-only CTEs
 * count, in the statement's snapshot, the rows that existed and those whose API-owned columns
 * are unchanged, and the INSERT … ON CONFLICT writes them all (synced_at marks them seen).
 * Runs inside the caller's transaction. Library layer: -errno, the message in db_error(). */
#include "sync-store.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

static char *sql_for(const SyncTable *t) {
        const char *name = t->name;
        char *q = strextendf(NULL, "WITH input AS (SELECT r.*, coalesce((e->>'_keep')::bigint, 0) AS _keep "
                             "FROM json_array_elements($1::json) AS e, json_populate_record(NULL::%s, e) AS r), "
                             "merged AS (SELECT i.external_id, t.external_id IS NOT NULL AS _existed", name);
        for (size_t c = 1; c < t->n_cols; c++)
                q = strextendf(q, ", CASE WHEN ((i._keep >> %zu) & 1) = 1 THEN t.%s ELSE i.%s END AS %s", c, t->cols[c],
                               t->cols[c], t->cols[c]);
        q = strextendf(q, " FROM input i LEFT JOIN %s t ON t.external_id = i.external_id), "
                       "unchanged AS (SELECT count(*) AS n FROM %s t JOIN merged m USING (external_id) WHERE ", name, name);
        for (size_t c = 1; c < t->n_cols; c++)
                q = strextendf(q, "%st.%s IS NOT DISTINCT FROM m.%s", c > 1 ? " AND " : "", t->cols[c], t->cols[c]);
        if (t->has_deleted_at)
                q = strextendf(q, " AND t.deleted_at IS NULL");
        q = strextendf(q, "), up AS (INSERT INTO %s AS t (", name);
        for (size_t c = 0; c < t->n_cols; c++)
                q = strextendf(q, "%s, ", t->cols[c]);
        q = strextendf(q, "synced_at) SELECT ");
        for (size_t c = 0; c < t->n_cols; c++)
                q = strextendf(q, "%s, ", t->cols[c]);
        q = strextendf(q, "$2::timestamptz FROM merged ON CONFLICT (external_id) DO UPDATE SET ");
        for (size_t c = 1; c < t->n_cols; c++)
                q = strextendf(q, "%s = excluded.%s, ", t->cols[c], t->cols[c]);
        q = strextendf(q, "synced_at = excluded.synced_at%s RETURNING 1) "
                   "SELECT (SELECT count(*) FROM merged WHERE _existed), (SELECT n FROM unchanged), "
                   "(SELECT count(*) FROM up)",
                   t->has_deleted_at ? ", deleted_at = NULL" : "");
        return q;
}

static char *rows_json(const SyncTable *t, const DbValue *vals, size_t n) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject();
                for (size_t c = 0; c < t->n_cols; c++) {
                        const DbValue *v = &vals[i * t->n_cols + c];
                        switch (v->type) {
                        case DBV_TEXT:
                                if (v->s)
                                        cJSON_AddStringToObject(o, t->cols[c], v->s);
                                break;
                        case DBV_INT:
                                cJSON_AddNumberToObject(o, t->cols[c], (double) v->i);
                                break;
                        case DBV_BOOL:
                                cJSON_AddBoolToObject(o, t->cols[c], v->i);
                                break;
                        case DBV_NULL:
                                break; /* absent key: NULL (or, with its keep bit, the stored value) */
                        }
                }
                int64_t keep = sync_keep_mask(&vals[i * t->n_cols], t->n_cols);
                if (keep)
                        cJSON_AddNumberToObject(o, "_keep", (double) keep);
                cJSON_AddItemToArray(a, o);
        }
        char *s = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
        if (!s)
                abort();
        return s;
}

int sync_pg_write(Db *db, const SyncTable *t, char **sql_cache, const DbValue *vals, size_t n, const char *synced_at,
                  unsigned *ret_existed, unsigned *ret_changed) {
        if (!*sql_cache)
                *sql_cache = sql_for(t);
        _cleanup_free_ char *json = rows_json(t, vals, n);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, *sql_cache, DB_PARAMS(DBV_TEXT_OR_NULL(json), DBV_TEXT_OR_NULL(synced_at)), &c);
        if (r < 0)
                return r;
        r = db_cursor_next(c);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        int64_t existed = db_cursor_int(c, 0), unchanged = db_cursor_int(c, 1);
        *ret_existed = (unsigned) existed;
        *ret_changed = (unsigned) ((int64_t) n - existed) + (unsigned) (existed - unchanged);
        return 0;
}
