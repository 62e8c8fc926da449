/* SPDX-License-Identifier: MIT */
/* migrate.c — applies the compiled-in migrations idempotently and race-free: a quick
 * unlocked look first (the common case: nothing to do), then, only when behind, one write
 * transaction (SQLite BEGIN IMMEDIATE; PostgreSQL plus a transaction-scoped advisory lock)
 * that re-checks and applies. */
#include "migrate.h"

#include <openssl/evp.h>

#include "timeutil.h"

/* pg_advisory_xact_lock key: "gazelle-scheduler migrations". */
#define MIGRATION_LOCK_KEY "7163920314"

void migration_checksum(const Migration *m, char out[static MIGRATION_CHECKSUM_MAX]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        if (EVP_Digest(m->sql, strlen(m->sql), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
                abort(); /* SHA-256 of a string in memory: only out of memory can fail it */
        for (unsigned i = 0; i < len; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

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

/* Stores made before checksums were recorded: add the column, and the checksum of every
 * migration already applied under our name (inside the migration transaction). */
static int add_checksums(Db *db) {
        int r;
        if (db_backend(db) == DB_POSTGRESQL)
                r = db_exec(db, "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum TEXT", DB_NO_PARAMS);
        else {
                int64_t has = 0;
                r = db_query_int(db, "SELECT count(*) FROM pragma_table_info('schema_migrations') WHERE name = 'checksum'",
                                 DB_NO_PARAMS, &has);
                if (r >= 0 && !has)
                        r = db_exec(db, "ALTER TABLE schema_migrations ADD COLUMN checksum TEXT", DB_NO_PARAMS);
        }
        for (const Migration *m = migrations_of(db); r >= 0 && m->name; m++) {
                char sum[MIGRATION_CHECKSUM_MAX];
                migration_checksum(m, sum);
                r = db_exec(db, "UPDATE schema_migrations SET checksum = $3 WHERE version = $1 AND name = $2 "
                                "AND checksum IS NULL",
                            DB_PARAMS(DBV_I(m->version), DBV_TEXT_OR_NULL(m->name), ((DbValue) { .type = DBV_TEXT, .s = sum })));
        }
        return r < 0 ? r : 0;
}

int migrate_record_checksums(Db *db) {
        int r = db_begin(db);
        if (r >= 0)
                r = add_checksums(db);
        if (r >= 0)
                return db_commit(db);
        (void) db_rollback(db);
        return r;
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
                  "name TEXT NOT NULL, applied_at TEXT NOT NULL, checksum TEXT)"
                : "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL, checksum TEXT)");
        if (r >= 0)
                r = add_checksums(db);
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
                char sum[MIGRATION_CHECKSUM_MAX];
                migration_checksum(m, sum);
                r = db_exec(db, "INSERT INTO schema_migrations (version, name, applied_at, checksum) "
                                "VALUES ($1, $2, $3, $4)",
                            DB_PARAMS(DBV_I(m->version), DBV_TEXT_OR_NULL(m->name),
                                      DBV_TEXT_OR_NULL(format_iso_utc(now_realtime(), now)), ((DbValue) { .type = DBV_TEXT, .s = sum })));
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
