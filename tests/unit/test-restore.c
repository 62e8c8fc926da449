/* SPDX-License-Identifier: MIT */
/* test-restore.c — `restore` on both stores: another program's SQLite file (Rails and
 * golang-migrate make a schema_migrations table too), forged and damaged files are refused with
 * the store untouched and no copy made; an older-schema backup is migrated forward; a backup →
 * change → restore round trip gives back exactly the tables it started from; the replaced store
 * is kept as pre-restore-YYYYMMDD_HHMMSS.sqlite outside the rotation, and restores in turn;
 * --dry-run prints the rows per table and changes nothing. SQLite always; PostgreSQL with
 * TEST_DATABASE_URL or inside tests/sandbox.sh. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "backup.h"
#include "config.h"
#include "db.h"
#include "migrate.h"
#include "restore.h"
#include "runner.h"
#include "task-run.h"
#include "store.h"
#include "task-lock.h"
#include "tasks.h"
#include "test-pg.h"
#include "test-env.h"
#include "test.h"
#include "timeutil.h"

static char *tmp_root;
static unsigned counter;
static char *pg_admin_url;

/* One test's world: its own state directory (store, locks, backups) and, for PostgreSQL, its
 * own database. */
typedef struct Env {
        Config config;
        char *state_home;
        char *pg_dbname;
} Env;

static void env_clear_settings(void) {
        static const char *const clear[] = { "STATE_DIRECTORY", "DATABASE_URL", "CREDENTIALS_DIRECTORY", "BACKUP_DIR",
                                             "BACKUP_SQLITE_PATH", "BACKUP_KEEP", "INVOCATION_ID" };
        test_unsetenv_all(clear, ELEMENTSOF(clear));
}

static void env_init(Env *e, bool pg) {
        *e = (Env) {};
        env_clear_settings();
        ASSERT(asprintf(&e->state_home, "%s/state-%u", tmp_root, ++counter) >= 0);
        setenv("XDG_STATE_HOME", e->state_home, 1);
        if (pg) {
                e->pg_dbname = test_pg_create_database(pg_admin_url, "restore");
                _cleanup_free_ char *url = test_pg_conninfo_with_dbname(pg_admin_url, e->pg_dbname);
                setenv("DATABASE_URL", url, 1);
        }
        ASSERT_OKF(config_load(&e->config, BUS_USER), "config_load: %s", e->config.error);
        ASSERT(pg == !!e->config.database_url);
}

static void env_done(Env *e) {
        config_clear(&e->config);
        test_rm_rf(e->state_home);
        free(e->state_home);
        if (e->pg_dbname)
                test_pg_drop_database(pg_admin_url, e->pg_dbname);
        free(e->pg_dbname);
        env_clear_settings();
}

/* The product's tables, whose contents a round trip must give back. */
static const char *const tables[] = {
        "scheduler_logs", "gazelle_clients", "gazelle_contacts", "gazelle_pianos", "gazelle_timeline_entries",
        "gazelle_appointments", "gazelle_users", "sync_state", "alert_ledger", "gazelle_oauth_tokens",
};

/* Every row of every table as text, in a stable order (the backup run's own row left out: it
 * is written after the copy was taken). */
static char *dump(const Env *e) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        Buf b = {};
        for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
                _cleanup_free_ char *sql = xasprintf("SELECT * FROM %s %s ORDER BY 1", tables[t],
                                                     streq(tables[t], "scheduler_logs") ? "WHERE task_name <> 'backup'"
                                                                                        : "");
                _cleanup_(db_cursor_freep) DbCursor *c = NULL;
                int r = db_query(db, sql, DB_NO_PARAMS, &c);
                ASSERT_OKF(r, "%s: %s", sql, db_error(db));
                buf_printf(&b, "[%s]\n", tables[t]);
                while ((r = db_cursor_next(c)) > 0) {
                        for (int i = 0; i < db_cursor_columns(c); i++)
                                buf_printf(&b, "%s=%s|", db_cursor_name(c, i),
                                           db_cursor_text(c, i) ? db_cursor_text(c, i) : "NULL");
                        buf_puts(&b, "\n");
                }
                ASSERT_OKF(r, "%s: %s", sql, db_error(db));
        }
        return b.data;
}

/* Representative rows on both engines: Unicode, quotes, NULLs, booleans, microseconds, JSON,
 * a serial id, a real caller. */
static void populate(const Env *e) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        exec_sql(db,
                 "INSERT INTO gazelle_users (external_id, first_name, last_name, synced_at) VALUES "
                 "('usr_1', 'Nick', 'Lévesque 🎹', '2026-11-24T10:00:00.123456Z'), "
                 "('usr_2', NULL, NULL, '2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO gazelle_contacts (external_id, client_external_id, is_default, first_name, wants_email, "
                 "wants_phone, synced_at) VALUES ('con_1', 'cli_1', TRUE, 'Hélène « l''aînée »', FALSE, NULL, "
                 "'2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO gazelle_appointments (external_id, title, start_at, duration_minutes, is_all_day, "
                 "synced_at) VALUES ('apt_1', 'Accord', '2026-11-25T19:30:00.000000Z', 90, FALSE, "
                 "'2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, state, "
                 "transport, attempts, created_at, updated_at) VALUES "
                 "('apt_1', '2026-11-25', 'usr_1', 'queued', 'outbox', 1, '2026-11-24T21:00:00.000000Z', "
                 "'2026-11-24T21:00:00.000000Z'), "
                 "('apt_2', '2026-11-26', 'usr_2', 'sent', 'sendgrid', 2, '2026-11-25T21:00:00.000000Z', "
                 "'2026-11-25T21:00:00.000000Z');"
                 "INSERT INTO gazelle_timeline_entries (external_id, occurred_at, type, comment, synced_at) VALUES "
                 "('tme_1', '2026-11-20T15:00:00.000000Z', 'SERVICE_ENTRY_MANUAL', 'ligne 1\nligne 2\tonglet "
                 "\\N C:\\piano\r', '2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO sync_state (entity, high_water_mark, updated_at) VALUES "
                 "('timeline', '2026-01-01T00:00:00.000000Z', '2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO gazelle_oauth_tokens (id, access_token, refresh_token, updated_at) VALUES "
                 "(1, 'at', 'rt', '2026-11-24T10:00:00.000000Z');"
                 "INSERT INTO scheduler_logs (id, task_name, task_label, started_at, completed_at, duration_seconds, "
                 "status, message, stats, triggered_by, triggered_by_user, created_at, caller_uid, caller_name) VALUES "
                 "('6f1c2f0e-8d1a-4c3b-9a7e-1b2c3d4e5f60', 'sync_gazelle', 'Sync Gazelle Totale', "
                 "'2026-11-24T06:00:00.000000Z', '2026-11-24T06:03:20.000000Z', 200, 'success', "
                 "'Sync terminée : 2 contacts', '{\"note\": \"l''été 🎹\"}', 'manual', 'nick@piano-tek.com', "
                 "'2026-11-24T06:00:00.000000Z', 1000, 'alice')");
}

static void mutate(const Env *e) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        exec_sql(db, "DELETE FROM gazelle_users WHERE external_id = 'usr_2';"
                     "UPDATE gazelle_contacts SET first_name = 'Autre' WHERE external_id = 'con_1';"
                     "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, state, "
                     "attempts, created_at, updated_at) VALUES ('apt_3', '2026-11-27', 'usr_1', 'failed', 3, "
                     "'2026-11-26T21:00:00.000000Z', '2026-11-26T21:00:00.000000Z');"
                     "DELETE FROM gazelle_oauth_tokens;"
                     "DELETE FROM scheduler_logs");
}

static int run_backup(const Env *e) {
        RunOptions opts = {};
        fflush(NULL);
        return task_run(&e->config, task_get(TASK_BACKUP), &opts);
}

/* The single file of dir whose name starts with prefix (NULL when none); fails on two. */
static char *only_file(const char *dir, const char *prefix) {
        DIR *d = opendir(dir);
        char *found = NULL;
        if (!d)
                return NULL;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
                        ASSERTF(!found, "two files %s* in %s", prefix, dir);
                        found = xasprintf("%s/%s", dir, de->d_name);
                }
        closedir(d);
        return found;
}

static char *make_backup(const Env *e) {
        ASSERT_EQ_INT(run_backup(e), EXIT_TASK_OK);
        char *path = only_file(e->config.backup_dir, BACKUP_PREFIX);
        ASSERT(path);
        /* Every backup carries the checksum of each migration it went through. */
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        ASSERT_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*), count(checksum) FROM schema_migrations", -1, &st, NULL),
                      SQLITE_OK);
        ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
        ASSERT(sqlite3_column_int(st, 0) > 0);
        ASSERT_EQ_INT(sqlite3_column_int(st, 1), sqlite3_column_int(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return path;
}

/* pre-restore-YYYYMMDD_HHMMSS.sqlite */
static void assert_pre_restore_name(const char *path) {
        const char *base = strrchr(path, '/') + 1;
        ASSERTF(strlen(base) == strlen(PRE_RESTORE_PREFIX) + 15 + strlen(".sqlite"), "%s", base);
        const char *p = base + strlen(PRE_RESTORE_PREFIX);
        for (int i = 0; i < 15; i++)
                ASSERTF(i == 8 ? p[i] == '_' : p[i] >= '0' && p[i] <= '9', "%s", base);
        ASSERT_STREQ(p + 15, ".sqlite");
}

/* ---- Files that are not our backups ---------------------------------------------------- */

static char *sqlite_file(const char *dir, const char *name, const char *sql) {
        char *path = xasprintf("%s/%s", dir, name);
        sqlite3 *db = NULL;
        ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
        char *err = NULL;
        ASSERTF(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", name, err ? err : "?");
        sqlite3_close(db);
        return path;
}

/* A schema at version `version`, made the way that version of the program made it (its
 * schema_migrations without checksums). */
static const char *schema_sql_upto(int version, Buf *b) {
        for (const Migration *m = sqlite_migrations; m->name && m->version <= version; m++)
                buf_printf(b, "%s;\n", m->sql);
        buf_puts(b, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TEXT NOT NULL);\n");
        for (const Migration *m = sqlite_migrations; m->name && m->version <= version; m++)
                buf_printf(b, "INSERT INTO schema_migrations VALUES (%d, '%s', '2026-01-01T00:00:00.000000Z');\n",
                           m->version, m->name);
        return b->data;
}

static void foreign_files(bool pg) {
        Env e;
        env_init(&e, pg);
        populate(&e);
        _cleanup_free_ char *before = dump(&e);
        _cleanup_free_ char *dir = xasprintf("%s/foreign-%u", tmp_root, counter);
        ASSERT_OK(mkdir_p(dir, 0700));

        Buf ours = {}, damaged = {}, renamed = {};
        schema_sql_upto(INT_MAX, &ours);
        schema_sql_upto(INT_MAX, &damaged);
        buf_puts(&damaged, "DROP TABLE gazelle_users; CREATE TABLE gazelle_users (external_id TEXT PRIMARY KEY);");
        schema_sql_upto(INT_MAX, &renamed);
        buf_puts(&renamed, "UPDATE schema_migrations SET name = 'create_users' WHERE version = 1;");
        Buf missing = {};
        schema_sql_upto(INT_MAX, &missing);
        buf_puts(&missing, "DROP TABLE alert_ledger;");
        Buf badsum = {};
        schema_sql_upto(INT_MAX, &badsum);
        buf_puts(&badsum, "ALTER TABLE schema_migrations ADD COLUMN checksum TEXT;"
                          "UPDATE schema_migrations SET checksum = 'ab12' WHERE version = 1;");

        struct {
                const char *name, *sql, *reason;
        } cases[] = {
                /* Rails: schema_migrations(version varchar) and ar_internal_metadata. */
                { "rails.sqlite3",
                  "CREATE TABLE schema_migrations (version varchar NOT NULL PRIMARY KEY);"
                  "CREATE TABLE ar_internal_metadata (key varchar PRIMARY KEY, value varchar, created_at datetime, "
                  "updated_at datetime);"
                  "CREATE TABLE users (id integer PRIMARY KEY, email varchar);"
                  "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240215103000');",
                  "autre programme" },
                /* golang-migrate: schema_migrations(version bigint, dirty boolean). */
                { "golang-migrate.db",
                  "CREATE TABLE schema_migrations (version uint64, dirty bool);"
                  "CREATE UNIQUE INDEX version_unique ON schema_migrations (version);"
                  "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom TEXT);"
                  "INSERT INTO schema_migrations VALUES (3, 0);",
                  "autre programme" },
                /* Our column layout, someone else's migrations. */
                { "lookalike.sqlite",
                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT "
                  "NOT NULL); INSERT INTO schema_migrations VALUES (1, '001_create_users', '2026-01-01');"
                  "CREATE TABLE users (id INTEGER PRIMARY KEY);",
                  "inconnue" },
                { "renamed.sqlite", renamed.data, "inconnue" },
                { "no-migrations.sqlite", "CREATE TABLE scheduler_logs (id TEXT);", "schema_migrations" },
                { "empty-migrations.sqlite",
                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT "
                  "NOT NULL);",
                  "vide" },
                { "missing-table.sqlite", missing.data, "alert_ledger absente" },
                { "other-columns.sqlite", damaged.data, "colonnes de gazelle_users" },
                { "bad-checksum.sqlite", badsum.data, "somme de contrôle" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = sqlite_file(dir, cases[i].name, cases[i].sql);
                char reason[512] = "";
                int r = backup_inspect(path, NULL, reason, sizeof reason);
                ASSERTF(r == -EBADMSG, "%s: %d (%s)", cases[i].name, r, reason);
                ASSERTF(strstr(reason, cases[i].reason), "%s: reason \"%s\" lacks \"%s\"", cases[i].name, reason,
                        cases[i].reason);
                ASSERT_EQ_INT(backup_restore(&e.config, path, false), EXIT_TASK_FAILED);
                ASSERT_EQ_INT(backup_restore(&e.config, path, true), EXIT_TASK_FAILED);
        }
        /* Not SQLite at all, and a directory. */
        _cleanup_free_ char *text = xasprintf("%s/notes.sqlite", dir);
        FILE *f = fopen(text, "w");
        ASSERT(f);
        fputs("Ceci n'est pas une base de données.\n", f);
        fclose(f);
        ASSERT_EQ_INT(backup_restore(&e.config, text, false), EXIT_TASK_FAILED);
        ASSERT_EQ_INT(backup_restore(&e.config, dir, false), EXIT_TASK_FAILED);

        /* The control: the same script with our own schema is recognised. */
        _cleanup_free_ char *good = sqlite_file(dir, "ours.sqlite", ours.data);
        char reason[512] = "";
        int version = 0;
        ASSERT_OKF(backup_inspect(good, &version, reason, sizeof reason), "%s", reason);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(version, migrate_latest(db));
        }

        /* Nothing changed, nothing was copied. */
        _cleanup_free_ char *after = dump(&e);
        ASSERT_STREQ(after, before);
        _cleanup_free_ char *kept = only_file(e.config.backup_dir, PRE_RESTORE_PREFIX);
        ASSERT_NULL(kept);
        free(ours.data), free(damaged.data), free(renamed.data), free(missing.data), free(badsum.data);
        test_rm_rf(dir);
        env_done(&e);
}

TEST(foreign_files_sqlite) {
        foreign_files(false);
}

TEST(foreign_files_postgresql) {
        foreign_files(true);
}

/* ---- An older backup ------------------------------------------------------------------- */

static void older_schema(bool pg) {
        Env e;
        env_init(&e, pg);
        populate(&e);
        _cleanup_free_ char *dir = xasprintf("%s/older-%u", tmp_root, counter);
        ASSERT_OK(mkdir_p(dir, 0700));
        /* Version 2: before the ledger's `queued` state (003) and the caller columns (004). */
        Buf b = {};
        schema_sql_upto(2, &b);
        buf_puts(&b, "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, state, "
                     "transport, attempts, created_at, updated_at) VALUES ('apt_9', '2026-10-01', 'usr_1', 'sent', "
                     "'outbox', 1, '2026-09-30T20:00:00.000000Z', '2026-09-30T20:00:00.000000Z');"
                     "INSERT INTO scheduler_logs (id, task_name, task_label, started_at, status, stats, triggered_by, "
                     "created_at) VALUES ('0b7a3c1e-2d4f-4e5a-8b6c-7d8e9f0a1b2c', 'rv_alerts', 'Sync RV & Alertes', "
                     "'2026-09-30T20:00:00.000000Z', 'success', '{}', 'scheduler', '2026-09-30T20:00:00.000000Z');");
        _cleanup_free_ char *path = sqlite_file(dir, "db_backup_20261001_000000.sqlite", b.data);
        free(b.data);
        int version = 0;
        char reason[512] = "";
        ASSERT_OKF(backup_inspect(path, &version, reason, sizeof reason), "%s", reason);
        ASSERT_EQ_INT(version, 2);

        ASSERT_EQ_INT(backup_restore(&e.config, path, false), EXIT_TASK_OK);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM alert_ledger"), 1);
                /* Migration 003 ran on the restored rows: an outbox alert is queued, not sent. */
                _cleanup_free_ char *state = NULL;
                ASSERT_EQ_INT(db_query_text(db, "SELECT state FROM alert_ledger", DB_NO_PARAMS, &state), 1);
                ASSERT_STREQ(state, "queued");
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM scheduler_logs WHERE task_name = 'rv_alerts' "
                                            "AND caller_uid IS NULL"), 1);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM gazelle_users"), 0);
                ASSERT_EQ_INT(query_int(db, "SELECT max(version) FROM schema_migrations"), migrate_latest(db));
        }
        if (!pg) {
                /* Migrated in the store itself, not on its next opening. */
                sqlite3 *raw = NULL;
                ASSERT_EQ_INT(sqlite3_open_v2(e.config.sqlite_path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                sqlite3_stmt *st = NULL;
                ASSERT_EQ_INT(sqlite3_prepare_v2(raw, "SELECT max(version), count(checksum) = count(*) "
                                                      "FROM schema_migrations", -1, &st, NULL),
                              SQLITE_OK);
                ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
                int v = sqlite3_column_int(st, 0);
                /* The forward migration recorded every migration's checksum, old ones included. */
                ASSERT_EQ_INT(sqlite3_column_int(st, 1), 1);
                sqlite3_finalize(st);
                sqlite3_close(raw);
                ASSERT(v > 2);
        }
        /* The backup file itself was never written: still version 2. */
        ASSERT_OKF(backup_inspect(path, &version, reason, sizeof reason), "%s", reason);
        ASSERT_EQ_INT(version, 2);
        _cleanup_free_ char *kept = only_file(e.config.backup_dir, PRE_RESTORE_PREFIX);
        ASSERT(kept);
        test_rm_rf(dir);
        env_done(&e);
}

/* A backup of today's schema made before checksums were recorded: restored, and the store
 * records them at once (its next backups are recognised by checksum too). */
TEST(without_checksums_sqlite) {
        Env e;
        env_init(&e, false);
        populate(&e);
        _cleanup_free_ char *dir = xasprintf("%s/nosum-%u", tmp_root, counter);
        ASSERT_OK(mkdir_p(dir, 0700));
        Buf b = {};
        schema_sql_upto(INT_MAX, &b);
        _cleanup_free_ char *path = sqlite_file(dir, "db_backup_20261101_030000.sqlite", b.data);
        free(b.data);
        ASSERT_EQ_INT(backup_restore(&e.config, path, false), EXIT_TASK_OK);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM gazelle_users"), 0);
                ASSERT_EQ_INT(query_int(db, "SELECT count(checksum) FROM schema_migrations"), migrate_latest(db));
        }
        test_rm_rf(dir);
        env_done(&e);
}

TEST(older_schema_sqlite) {
        older_schema(false);
}

TEST(older_schema_postgresql) {
        older_schema(true);
}

/* ---- Round trip -------------------------------------------------------------------------- */

/* stdout of backup_restore(--dry-run) */
static char *dry_run_output(const Env *e, const char *path, int *ret_exit) {
        _cleanup_free_ char *out = xasprintf("%s/dry-run.txt", e->state_home);
        ASSERT_OK(mkdir_p(e->state_home, 0700));
        fflush(stdout);
        int saved = dup(STDOUT_FILENO);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT(saved >= 0 && fd >= 0);
        ASSERT(dup2(fd, STDOUT_FILENO) >= 0);
        close(fd);
        *ret_exit = backup_restore(&e->config, path, true);
        fflush(stdout);
        ASSERT(dup2(saved, STDOUT_FILENO) >= 0);
        close(saved);
        char *text = NULL;
        ASSERT_OK(read_file_bounded(out, 1 << 20, &text));
        return text;
}

static void assert_plan(const char *text, const char *table, long long now, long long after) {
        const char *line = strstr(text, table);
        ASSERTF(line, "no line for %s in:\n%s", table, text);
        long long a = -1, b = -1;
        ASSERTF(sscanf(line + strlen(table), " %lld -> %lld", &a, &b) == 2, "%s: %.80s", table, line);
        ASSERTF(a == now && b == after, "%s: %lld -> %lld, expected %lld -> %lld", table, a, b, now, after);
}

static void round_trip(bool pg) {
        Env e;
        env_init(&e, pg);
        populate(&e);
        _cleanup_free_ char *before = dump(&e);
        _cleanup_free_ char *backup = make_backup(&e);
        mutate(&e);
        _cleanup_free_ char *changed = dump(&e);
        ASSERT(!streq(changed, before));

        /* --dry-run: rows now -> rows after, per table; nothing changes, nothing is kept. */
        int rc = -1;
        _cleanup_free_ char *plan = dry_run_output(&e, backup, &rc);
        ASSERT_EQ_INT(rc, EXIT_TASK_OK);
        assert_plan(plan, "gazelle_users", 1, 2);
        assert_plan(plan, "alert_ledger", 3, 2);
        assert_plan(plan, "gazelle_oauth_tokens", 0, 1);
        _cleanup_free_ char *still = dump(&e);
        ASSERT_STREQ(still, changed);
        _cleanup_free_ char *none = only_file(e.config.backup_dir, PRE_RESTORE_PREFIX);
        ASSERT_NULL(none);

        /* Refused while a task runs: nothing changes, nothing is kept. */
        {
                _cleanup_close_ int fd = -1;
                ASSERT_OK(task_lock_take(&e.config, task_get(TASK_RV_ALERTS), &fd));
                ASSERT_EQ_INT(backup_restore(&e.config, backup, false), EXIT_TASK_FAILED);
                _cleanup_free_ char *same = dump(&e);
                ASSERT_STREQ(same, changed);
                _cleanup_free_ char *no = only_file(e.config.backup_dir, PRE_RESTORE_PREFIX);
                ASSERT_NULL(no);
        }

        /* Refused while another host holds a task's lease (a run in progress there). */
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                TaskLeaseHolder prev = {};
                const char *remote_run = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
                ASSERT_OKF(task_lease_take(db, task_get(TASK_SYNC_GAZELLE), "autre-hote", remote_run, 60, &prev), "%s",
                           db_error(db));
                ASSERT_EQ_INT(backup_restore(&e.config, backup, false), EXIT_TASK_FAILED);
                _cleanup_free_ char *same = dump(&e);
                ASSERT_STREQ(same, changed);
                ASSERT_OK(task_lease_release(db, task_get(TASK_SYNC_GAZELLE), remote_run));
        }

        ASSERT_EQ_INT(backup_restore(&e.config, backup, false), EXIT_TASK_OK);
        _cleanup_free_ char *after = dump(&e);
        ASSERT_STREQ(after, before);
        {
                /* The backup run's own lease, in every backup, is not brought back. */
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM task_leases"), 0);
        }
        {
                /* A serial id restored is not handed out again. */
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                exec_sql(db, "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, "
                             "attempts, created_at, updated_at) VALUES ('apt_4', '2026-11-28', 'usr_1', 0, "
                             "'2026-11-27T21:00:00.000000Z', '2026-11-27T21:00:00.000000Z')");
                ASSERT_EQ_INT(query_int(db, "SELECT id FROM alert_ledger WHERE appointment_external_id = 'apt_4'"), 3);
                exec_sql(db, "DELETE FROM alert_ledger WHERE appointment_external_id = 'apt_4'");
        }

        /* The replaced store was kept, verified, outside the rotation, and restores in turn. */
        _cleanup_free_ char *kept = only_file(e.config.backup_dir, PRE_RESTORE_PREFIX);
        ASSERT(kept);
        assert_pre_restore_name(kept);
        char reason[512] = "";
        ASSERT_OKF(backup_verify(kept, reason, sizeof reason), "%s: %s", kept, reason);
        unsigned n_kept = 0, deleted = 0;
        ASSERT_OK(backup_rotate(e.config.backup_dir, 1, &n_kept, &deleted));
        ASSERT_EQ_INT(n_kept, 1);
        ASSERT_EQ_INT(deleted, 0);
        ASSERT_OK(access(kept, F_OK));
        _cleanup_free_ char *kept_copy = xasprintf("%s/undo.sqlite", e.state_home);
        /* Moved aside, so that the next pre-restore file is the only one of its name. */
        ASSERT_OK(rename(kept, kept_copy) < 0 ? -errno : 0);
        ASSERT_EQ_INT(backup_restore(&e.config, kept_copy, false), EXIT_TASK_OK);
        _cleanup_free_ char *undone = dump(&e);
        ASSERT_STREQ(undone, changed);
        env_done(&e);
}

TEST(round_trip_sqlite) {
        round_trip(false);
}

TEST(round_trip_postgresql) {
        round_trip(true);
}

/* A value PostgreSQL refuses, in the last table copied: every table already replaced in the
 * transaction comes back, the store is as it was. */
TEST(postgresql_failure_rolls_back) {
        Env e;
        env_init(&e, true);
        populate(&e);
        _cleanup_free_ char *backup = make_backup(&e);
        mutate(&e);
        _cleanup_free_ char *changed = dump(&e);
        _cleanup_free_ char *bad = xasprintf("%s/bad.sqlite", e.state_home);
        {
                sqlite3 *src = NULL, *dest = NULL;
                ASSERT_EQ_INT(sqlite3_open_v2(backup, &src, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                ASSERT_EQ_INT(sqlite3_open(bad, &dest), SQLITE_OK);
                sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
                ASSERT(b);
                ASSERT_EQ_INT(sqlite3_backup_step(b, -1), SQLITE_DONE);
                ASSERT_EQ_INT(sqlite3_backup_finish(b), SQLITE_OK);
                ASSERT_EQ_INT(sqlite3_exec(dest, "UPDATE sync_state SET high_water_mark = 'pas une date'", NULL, NULL,
                                           NULL), SQLITE_OK);
                sqlite3_close(src);
                sqlite3_close(dest);
        }
        char reason[512] = "";
        ASSERT_OKF(backup_inspect(bad, NULL, reason, sizeof reason), "%s", reason);
        ASSERT_EQ_INT(backup_restore(&e.config, bad, false), EXIT_TASK_FAILED);
        _cleanup_free_ char *after = dump(&e);
        ASSERT_STREQ(after, changed);
        env_done(&e);
}

/* A backup of a PostgreSQL store restores into SQLite and back: one format for both. */
TEST(across_stores) {
        Env pg, sq;
        env_init(&pg, true);
        populate(&pg);
        _cleanup_free_ char *before = dump(&pg);
        _cleanup_free_ char *backup = make_backup(&pg);
        env_init(&sq, false);
        ASSERT_EQ_INT(backup_restore(&sq.config, backup, false), EXIT_TASK_OK);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&sq.config);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM alert_ledger"), 2);
                ASSERT_EQ_INT(query_int(db, "SELECT caller_uid FROM scheduler_logs WHERE task_name = 'sync_gazelle'"),
                              1000);
        }
        _cleanup_free_ char *sq_backup = make_backup(&sq);
        mutate(&pg);
        ASSERT_EQ_INT(backup_restore(&pg.config, sq_backup, false), EXIT_TASK_OK);
        _cleanup_free_ char *after = dump(&pg);
        ASSERT_STREQ(after, before);
        env_done(&sq);
        env_done(&pg);
}

int main(int argc, char **argv) {
        if (access("/usr/share/zoneinfo/" TZ_MONTREAL, R_OK) < 0)
                test_skip_all("no zoneinfo for %s (install tzdata)", TZ_MONTREAL);
        tz_init();
        umask(0077);
        tmp_root = test_mkdtemp("restore");

        TestCase cases[16];
        size_t n = 0;
        cases[n++] = (TestCase) TEST_CASE(foreign_files_sqlite);
        cases[n++] = (TestCase) TEST_CASE(older_schema_sqlite);
        cases[n++] = (TestCase) TEST_CASE(without_checksums_sqlite);
        cases[n++] = (TestCase) TEST_CASE(round_trip_sqlite);
        const char *url;
        TestPgAvailability pg = test_pg_url(&url);
        if (pg == TEST_PG_AVAILABLE) {
                pg_admin_url = xstrdup(url);
                cases[n++] = (TestCase) TEST_CASE(foreign_files_postgresql);
                cases[n++] = (TestCase) TEST_CASE(older_schema_postgresql);
                cases[n++] = (TestCase) TEST_CASE(round_trip_postgresql);
                cases[n++] = (TestCase) TEST_CASE(across_stores);
                cases[n++] = (TestCase) TEST_CASE(postgresql_failure_rolls_back);
        }
        int r = test_run_all(cases, n, argc, argv);
        if (r == 0 && pg == TEST_PG_MISSING) {
                printf("SKIP: TEST_DATABASE_URL_FROM_SBX=1 but SBX_PG_URL is not set (SBX_NO_PG=1?)\n");
                r = EXIT_TEST_SKIP;
        } else if (r == 0 && pg == TEST_PG_NONE)
                test_skip_part("postgresql", "TEST_DATABASE_URL is not set");
        free(pg_admin_url);
        test_rm_rf(tmp_root);
        free(tmp_root);
        return r;
}
