/* migrate.c — applies the compiled-in migrations idempotently and race-free: a quick
 * unlocked look first (the common case: nothing to do), then, only when behind, one write
 * transaction (SQLite BEGIN IMMEDIATE; PostgreSQL plus a transaction-scoped advisory lock)
 * that re-checks and applies. */
#include "migrate.h"
#include "timeutil.h"

/* pg_advisory_xact_lock key: "gazelle-scheduler migrations". */
#define MIGRATION_LOCK_KEY "7163920314"

static const Migration *migrations_of(const Db *db) {
        return db_backend(db) == DB_SQLITE ? sqlite_migrations : postgresql_migrations;
}

int migrate_latest(const Db *db) {
        int v = 0;
        for (const Migration *m = migrations_of(db); m->name; m++)
                v = m->version;
        return v;
}

static int current_version(Db *db, int64_t *ret) {
        /* Absent table == version 0; the engines report it differently, so ask the catalogue. */
        const char *exists_sql = db_backend(db) == DB_SQLITE
                ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                : "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' "
                  "AND schemaname = current_schema()";
        int64_t exists = 0;
        int r = db_query_int(db, exists_sql, DB_NO_PARAMS, &exists);
        if (r < 0)
                return r;
        if (!exists) {
                *ret = 0;
                return 0;
        }
        r = db_query_int(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", DB_NO_PARAMS, ret);
        return r < 0 ? r : 0;
}

int migrate_apply(Db *db) {
        int64_t version;
        int applied = 0;

        int r = current_version(db, &version);
        if (r < 0)
                return r;
        if (version >= migrate_latest(db))
                return 0;

        r = db_begin(db);
        if (r < 0)
                return r;
        if (db_backend(db) == DB_POSTGRESQL) {
                r = db_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", DB_NO_PARAMS);
                if (r < 0)
                        goto fail;
        }
        r = db_exec_script(db, db_backend(db) == DB_SQLITE
                ? "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                : "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)");
        if (r < 0)
                goto fail;
        /* Re-read under the lock: another process may have migrated while we waited. */
        r = current_version(db, &version);
        if (r < 0)
                goto fail;

        for (const Migration *m = migrations_of(db); m->name; m++) {
                if (m->version <= version)
                        continue;
                r = db_exec_script(db, m->sql);
                if (r < 0) {
                        char msg[sizeof db->error];
                        snprintf(msg, sizeof msg, "migration %s: %s", m->name, db_error(db));
                        db_set_error(db, "%s", msg);
                        goto fail;
                }
                char now[ISO_UTC_MAX];
                r = db_exec(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                            DB_PARAMS(DBV_I(m->version), DBV_TEXT_OR_NULL(m->name),
                                      DBV_TEXT_OR_NULL(format_iso_utc(now_realtime(), now))));
                if (r < 0)
                        goto fail;
                applied++;
        }
        r = db_commit(db);
        return r < 0 ? r : applied;

fail:
        (void) db_rollback(db);
        return r;
}
