/* SPDX-License-Identifier: MIT */
/* db-pg.c — the PostgreSQL engine behind db.h, on libpq: parameterized statements, single-row
 * mode cursors (rows stream; nothing is buffered whole), SQLSTATE → errno mapping. Nothing
 * outlives a transaction on the server (no SET, no named prepared statement, no temporary
 * table, no session advisory lock), so the store works through a transaction-mode pooler
 * (PgBouncer, Supabase's Supavisor on port 6543) as it does directly. */
#include <inttypes.h>
#include <libpq-fe.h>

#include "db.h"

#define PG_BOOLOID 16
#define PG_MAX_PARAMS 64

typedef struct PgDb {
        Db base;
        PGconn *conn;
} PgDb;

typedef struct PgCursor {
        DbCursor base;
        PGresult *row;  /* the current PGRES_SINGLE_TUPLE result */
        bool done;
} PgCursor;

DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);

static PgDb *PG(Db *db) {
        return (PgDb *) db;
}

static int errno_of_result(const PGresult *res) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (!state)
                return -EIO;
        if (streq(state, "23505"))
                return -EEXIST;   /* unique_violation */
        if (streq(state, "55P03") || streq(state, "40P01"))
                return -EBUSY;    /* lock_not_available, deadlock */
        if (streq(state, "40001"))
                return -EAGAIN;   /* serialization_failure */
        if (streq(state, "53100"))
                return -ENOSPC;   /* disk_full */
        if (strncmp(state, "08", 2) == 0 || streq(state, "57P01"))
                return -ECONNRESET;
        if (strncmp(state, "28", 2) == 0 || streq(state, "42501"))
                return -EACCES;
        if (streq(state, "42P01") || streq(state, "42703"))
                return -ENOENT;   /* undefined table/column */
        return -EIO;
}

static int fail(PgDb *db, const PGresult *res) {
        const char *msg = res ? PQresultErrorMessage(res) : NULL;
        if (isempty(msg))
                msg = PQerrorMessage(db->conn);
        if (PQstatus(db->conn) == CONNECTION_BAD) {
                /* Said in the users' words: the run's message shows it as is. */
                db_set_error(&db->base, "PostgreSQL : connexion à la base perdue (serveur ou pooler arrêté ou "
                             "redémarré ?) : %s", isempty(msg) ? "unknown error" : msg);
                return -ECONNRESET;
        }
        db_set_error(&db->base, "PostgreSQL: %s", isempty(msg) ? "unknown error" : msg);
        return errno_of_result(res);
}

typedef struct PgParams {
        const char *values[PG_MAX_PARAMS];
        char ints[PG_MAX_PARAMS][24];
} PgParams;

static int convert_params(PgDb *db, const DbValue *params, size_t n, PgParams *out) {
        if (n > PG_MAX_PARAMS) {
                db_set_error(&db->base, "PostgreSQL: too many parameters (%zu)", n);
                return -E2BIG;
        }
        for (size_t i = 0; i < n; i++)
                switch (params[i].type) {
                case DBV_NULL:
                        out->values[i] = NULL;
                        break;
                case DBV_TEXT:
                        out->values[i] = params[i].s;
                        break;
                case DBV_INT:
                        snprintf(out->ints[i], sizeof out->ints[i], "%" PRId64, params[i].i);
                        out->values[i] = out->ints[i];
                        break;
                case DBV_BOOL:
                        out->values[i] = params[i].i ? "true" : "false";
                        break;
                default:
                        return -EINVAL;
                }
        return 0;
}

static int pg_exec(Db *base, const char *sql, const DbValue *params, size_t n) {
        PgDb *db = PG(base);
        PgParams p;

        int r = convert_params(db, params, n, &p);
        if (r < 0)
                return r;
        _cleanup_(PQclearp) PGresult *res = PQexecParams(db->conn, sql, (int) n, NULL, p.values, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                return fail(db, res);
        const char *changed = PQcmdTuples(res);
        return isempty(changed) ? 0 : atoi(changed);
}

static int pg_exec_script(Db *base, const char *sql) {
        PgDb *db = PG(base);
        /* The simple-query protocol runs ';'-separated statements; PQexec returns the last result
         * and stops at the first error. */
        _cleanup_(PQclearp) PGresult *res = PQexec(db->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
                return fail(db, res);
        return 0;
}

static int pg_query(Db *base, const char *sql, const DbValue *params, size_t n, DbCursor **ret) {
        PgDb *db = PG(base);
        PgParams p;

        int r = convert_params(db, params, n, &p);
        if (r < 0)
                return r;
        if (!PQsendQueryParams(db->conn, sql, (int) n, NULL, p.values, NULL, NULL, 0))
                return fail(db, NULL);
        if (!PQsetSingleRowMode(db->conn)) {
                /* Cannot happen right after a successful send; drain to keep the connection usable. */
                PGresult *res;
                while ((res = PQgetResult(db->conn)))
                        PQclear(res);
                db_set_error(base, "PostgreSQL: cannot switch to single-row mode");
                return -EIO;
        }
        PgCursor *c = xmalloc(sizeof *c);
        *c = (PgCursor) { .base.db = base };
        *ret = &c->base;
        return 0;
}

static void drain(PgCursor *c) {
        PgDb *db = PG(c->base.db);
        PGresult *res;
        while ((res = PQgetResult(db->conn)))
                PQclear(res);
        c->done = true;
}

static int pg_next(DbCursor *base) {
        PgCursor *c = (PgCursor *) base;
        PgDb *db = PG(base->db);

        if (c->done)
                return 0;
        PQclear(TAKE_PTR(c->row));

        PGresult *res = PQgetResult(db->conn);
        switch (PQresultStatus(res)) {
        case PGRES_SINGLE_TUPLE:
                c->row = res;
                return 1;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
                PQclear(res);
                drain(c);
                return 0;
        default: {
                int r = fail(db, res);
                PQclear(res);
                drain(c);
                return r;
        }
        }
}

static int pg_columns(const DbCursor *base) {
        const PgCursor *c = (const PgCursor *) base;
        return c->row ? PQnfields(c->row) : 0;
}

static const char *pg_name(const DbCursor *base, int col) {
        const PgCursor *c = (const PgCursor *) base;
        return c->row ? PQfname(c->row, col) : NULL;
}

static const char *pg_text(const DbCursor *base, int col) {
        const PgCursor *c = (const PgCursor *) base;
        if (!c->row || col >= PQnfields(c->row) || PQgetisnull(c->row, 0, col))
                return NULL;
        return PQgetvalue(c->row, 0, col);
}

static bool pg_is_bool(const DbCursor *base, int col) {
        const PgCursor *c = (const PgCursor *) base;
        return c->row && PQftype(c->row, col) == PG_BOOLOID;
}

static DbCursor *pg_cursor_free(DbCursor *base) {
        PgCursor *c = (PgCursor *) base;
        PQclear(c->row);
        if (!c->done)
                drain(c);
        free(c);
        return NULL;
}

static Db *pg_close(Db *base) {
        PgDb *db = PG(base);
        PQfinish(db->conn);
        free(db);
        return NULL;
}

static const DbOps pg_ops = {
        .close = pg_close,
        .exec = pg_exec,
        .exec_script = pg_exec_script,
        .query = pg_query,
        .next = pg_next,
        .columns = pg_columns,
        .name = pg_name,
        .text = pg_text,
        .is_bool = pg_is_bool,
        .cursor_free = pg_cursor_free,
};

static void ignore_notice(void *userdata, const char *message) {
}

/* On failure *ret still receives the half-open Db, which carries the reason in db_error():
 * callers report it, then db_close() it like any other. */
int db_open_postgresql(const char *conninfo, Db **ret) {
        PgDb *db = xmalloc(sizeof *db);
        *db = (PgDb) { .base = { .ops = &pg_ops, .backend = DB_POSTGRESQL } };
        Db *base = &db->base;

        *ret = base;

        /* Bounded connect: a dead server must fail a run in seconds, not hang it. libpq applies
         * keys in order, the last one winning: the defaults before dbname (the expanded URI)
         * give way to the user's URI; client_encoding after it is ours, all our text is UTF-8. */
        const char *keys[] = { "connect_timeout", "application_name", "dbname", "client_encoding", NULL };
        const char *vals[] = { "10", "gazelle-scheduler", conninfo, "UTF8", NULL };
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (!db->conn) {
                db_set_error(base, "PostgreSQL: out of memory");
                return -ENOMEM;
        }
        /* Library layer, never prints: libpq's default writes every NOTICE (each "already exists,
         * skipping" of an idempotent migration) to stderr, that is into the journal. */
        PQsetNoticeProcessor(db->conn, ignore_notice, NULL);
        if (PQstatus(db->conn) != CONNECTION_OK) {
                db_set_error(base, "PostgreSQL: %s", PQerrorMessage(db->conn));
                return -ECONNREFUSED;
        }
        /* No session state (no SET): through a transaction pooler the next statement may run on
         * another server connection. Timestamps are read with their offset, so the session's
         * time zone does not matter; their text form must be ISO, which is PostgreSQL's default
         * and Supabase's. */
        _cleanup_free_ char *style = NULL;
        int r = db_query_text(base, "SELECT current_setting('DateStyle')", DB_NO_PARAMS, &style);
        if (r < 0)
                return r;
        if (!style || strncmp(style, "ISO", 3) != 0) {
                db_set_error(base, "PostgreSQL: DateStyle is '%s', the scheduler reads ISO dates: run ALTER ROLE "
                             "<user> SET DateStyle = 'ISO, YMD' on the server", strempty(style));
                return -EPROTO;
        }
        return 0;
}

struct pg_conn *db_pg_handle(Db *db) {
        return db && db->backend == DB_POSTGRESQL ? PG(db)->conn : NULL;
}
