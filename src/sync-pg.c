/* sync-pg.c — the PostgreSQL page writer of sync.c (sync-store.h): the page's rows go to a temporary
 * staging table with one COPY, then one UPDATE marks the ids seen and one INSERT … ON CONFLICT
 * writes only rows whose API-owned columns differ. Three round trips per table and page,
 * whatever the page size. Runs inside the caller's transaction (the staging rows vanish at
 * commit). Library layer: -errno, the message in db_error(); never logs. */
#include "sync-store.h"

#include <libpq-fe.h>

static inline void PQclearp(PGresult **r) {
        if (*r)
                PQclear(*r);
}

typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = realloc(b->p, b->cap);
                if (!b->p)
                        abort();
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

/* COPY text format: backslash escapes for the four characters that would break a row. */
static void buf_put_copy_text(Buf *b, const char *s) {
        const char *start = s;
        for (; *s; s++) {
                const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : NULL;
                if (!esc)
                        continue;
                buf_put(b, start, (size_t) (s - start));
                buf_puts(b, esc);
                start = s + 1;
        }
        buf_put(b, start, (size_t) (s - start));
}

static int ensure_stage(Db *db, const SyncTable *t, bool *staged) {
        if (*staged)
                return 0;
        Buf sql = {};
        buf_puts(&sql, "CREATE TEMP TABLE IF NOT EXISTS stage_");
        buf_puts(&sql, t->name);
        buf_puts(&sql, " ON COMMIT DELETE ROWS AS SELECT ");
        for (size_t c = 0; c < t->n_cols; c++) {
                buf_puts(&sql, c ? ", " : "");
                buf_puts(&sql, t->cols[c]);
        }
        buf_puts(&sql, " FROM ");
        buf_puts(&sql, t->name);
        buf_puts(&sql, " WITH NO DATA");
        int r = db_exec(db, sql.p, DB_NO_PARAMS);
        free(sql.p);
        if (r < 0)
                return r;
        *staged = true;
        return 0;
}

static int copy_rows(Db *db, const SyncTable *t, const DbValue *vals, size_t n) {
        PGconn *conn = (PGconn *) db_pg_handle(db);
        Buf b = {};
        int r = 0;

        buf_puts(&b, "COPY stage_");
        buf_puts(&b, t->name);
        buf_puts(&b, " (");
        for (size_t c = 0; c < t->n_cols; c++) {
                buf_puts(&b, c ? ", " : "");
                buf_puts(&b, t->cols[c]);
        }
        buf_puts(&b, ") FROM STDIN");
        _cleanup_(PQclearp) PGresult *start = PQexec(conn, b.p);
        if (PQresultStatus(start) != PGRES_COPY_IN) {
                db_set_error(db, "PostgreSQL: COPY stage_%s: %s", t->name, PQerrorMessage(conn));
                free(b.p);
                return -EIO;
        }

        b.len = 0;
        for (size_t i = 0; i < n; i++) {
                for (size_t c = 0; c < t->n_cols; c++) {
                        const DbValue *v = &vals[i * t->n_cols + c];
                        char num[24];
                        if (c)
                                buf_puts(&b, "\t");
                        switch (v->type) {
                        case DBV_NULL:
                                buf_puts(&b, "\\N");
                                break;
                        case DBV_TEXT:
                                if (v->s)
                                        buf_put_copy_text(&b, v->s);
                                else
                                        buf_puts(&b, "\\N");
                                break;
                        case DBV_INT:
                                snprintf(num, sizeof num, "%" PRId64, v->i);
                                buf_puts(&b, num);
                                break;
                        case DBV_BOOL:
                                buf_puts(&b, v->i ? "t" : "f");
                                break;
                        }
                }
                buf_puts(&b, "\n");
        }
        if (PQputCopyData(conn, b.p, (int) b.len) != 1 || PQputCopyEnd(conn, NULL) != 1) {
                db_set_error(db, "PostgreSQL: COPY stage_%s: %s", t->name, PQerrorMessage(conn));
                r = -EIO;
        }
        free(b.p);
        /* Drain every result so the connection is usable again, whatever happened. */
        PGresult *res;
        while ((res = PQgetResult(conn))) {
                if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
                        db_set_error(db, "PostgreSQL: COPY stage_%s: %s", t->name, PQresultErrorMessage(res));
                        r = -EIO;
                }
                PQclear(res);
        }
        return r;
}

int sync_pg_write(Db *db, const SyncTable *t, const DbValue *vals, size_t n, const char *synced_at, bool *staged,
                  unsigned *ret_existed, unsigned *ret_changed) {
        bool fresh = !*staged;
        int r = ensure_stage(db, t, staged);
        if (r < 0)
                return r;
        if (!fresh) {
                /* Several pages may share a transaction: empty the previous page's rows. */
                _cleanup_free_ char *del = NULL;
                if (asprintf(&del, "DELETE FROM stage_%s", t->name) < 0)
                        abort();
                r = db_exec(db, del, DB_NO_PARAMS);
                if (r < 0)
                        return r;
        }
        r = copy_rows(db, t, vals, n);
        if (r < 0)
                return r;

        /* The ids as one array parameter: "= ANY($2)" is an index probe per id whatever the
         * planner thinks of the staging table (it has no statistics: a join could scan the
         * whole target table on every page). */
        Buf ids = {};
        buf_puts(&ids, "{");
        for (size_t i = 0; i < n; i++) {
                const char *id = vals[i * t->n_cols].s;
                buf_puts(&ids, i ? ",\"" : "\"");
                for (const char *c = id; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                buf_puts(&ids, "\\");
                        buf_put(&ids, c, 1);
                }
                buf_puts(&ids, "\"");
        }
        buf_puts(&ids, "}");
        Buf sql = {};
        buf_puts(&sql, "UPDATE ");
        buf_puts(&sql, t->name);
        buf_puts(&sql, " SET synced_at = $1 WHERE external_id = ANY($2::text[])");
        int existed = db_exec(db, sql.p, DB_PARAMS(DBV_TEXT_OR_NULL(synced_at), DBV_TEXT_OR_NULL(ids.p)));
        free(ids.p);
        if (existed < 0) {
                free(sql.p);
                return existed;
        }

        sql.len = 0;
        buf_puts(&sql, "INSERT INTO ");
        buf_puts(&sql, t->name);
        buf_puts(&sql, " AS t (");
        for (size_t c = 0; c < t->n_cols; c++) {
                buf_puts(&sql, t->cols[c]);
                buf_puts(&sql, ", ");
        }
        buf_puts(&sql, "synced_at) SELECT ");
        for (size_t c = 0; c < t->n_cols; c++) {
                buf_puts(&sql, t->cols[c]);
                buf_puts(&sql, ", ");
        }
        buf_puts(&sql, "$1::timestamptz FROM stage_");
        buf_puts(&sql, t->name);
        buf_puts(&sql, " ON CONFLICT (external_id) DO UPDATE SET ");
        for (size_t c = 1; c < t->n_cols; c++) {
                buf_puts(&sql, t->cols[c]);
                buf_puts(&sql, " = excluded.");
                buf_puts(&sql, t->cols[c]);
                buf_puts(&sql, ", ");
        }
        buf_puts(&sql, "synced_at = excluded.synced_at");
        if (t->has_deleted_at)
                buf_puts(&sql, ", deleted_at = NULL");
        buf_puts(&sql, " WHERE ");
        for (size_t c = 1; c < t->n_cols; c++) {
                buf_puts(&sql, c > 1 ? " OR t." : "t.");
                buf_puts(&sql, t->cols[c]);
                buf_puts(&sql, " IS DISTINCT FROM excluded.");
                buf_puts(&sql, t->cols[c]);
        }
        if (t->has_deleted_at)
                buf_puts(&sql, " OR t.deleted_at IS NOT NULL");
        int changed = db_exec(db, sql.p, DB_PARAMS(DBV_TEXT_OR_NULL(synced_at)));
        free(sql.p);
        if (changed < 0)
                return changed;

        *ret_existed = (unsigned) existed;
        *ret_changed = (unsigned) changed;
        return 0;
}
