/* SPDX-License-Identifier: MIT */
/* restore.c — `gazelle-scheduler restore FILE [--dry-run]`.
 *
 * Nothing is touched before the file is recognised by content: its schema_migrations must list
 * exactly this program's migrations (names, and checksums where recorded) from 1 to its
 * version, and every table that version creates must be there with exactly its columns
 * (compared with a schema built in memory from the embedded migrations). Another program's SQLite file —
 * Rails and golang-migrate both make a schema_migrations table — is refused.
 *
 * An older backup is copied to a work file next to the backups and migrated forward there, so
 * that it restores into the current schema; the backup itself is only ever read.
 * With every task locked out, the store in place is kept as pre-restore-YYYYMMDD_HHMMSS.sqlite
 * (the backup format, so it can itself be restored; the backup rotation never counts or
 * deletes it), and the work copy replaces the store in one transaction: SQLite with the backup
 * API, PostgreSQL with DELETE + INSERT of every product table and the sequences moved past the
 * restored ids. Readers see the old or the new data, never a mix. */
#include "restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "backup.h"
#include "migrate.h"
#include "runner.h"
#include "task-lock.h"

#define PRODUCT_TABLES_MAX 64
#define COLUMNS_TEXT_MAX 8192
#define COPY_CHUNK_BYTES (256 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3 *, sqlite3_close_v2);

typedef struct TableList {
        char *names[PRODUCT_TABLES_MAX];
        size_t n;
} TableList;

static void table_list_clear(TableList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->names[i]);
        l->n = 0;
}

/* ---- Recognition ------------------------------------------------------------------------ */

/* Product tables of db (every table but SQLite's own and schema_migrations), sorted by name. */
static int list_tables(sqlite3 *db, TableList *l) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                                    "AND name <> 'schema_migrations' ORDER BY name",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return db_sqlite_errno(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (l->n == PRODUCT_TABLES_MAX)
                        return -E2BIG;
                l->names[l->n++] = xstrdup((const char *) sqlite3_column_text(st, 0));
        }
        return rc == SQLITE_DONE ? 0 : db_sqlite_errno(rc);
}

/* "name TYPE, name TYPE…" in column order: what a table looks like, as one comparable text.
 * table is one of our own table names (never a caller's), so it may be quoted into SQL. */
static int table_shape(sqlite3 *db, const char *table, char shape[static COLUMNS_TEXT_MAX]) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *sql = xasprintf("SELECT name, upper(type) FROM pragma_table_info('%s')", table);
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return db_sqlite_errno(rc);
        size_t n = 0;
        shape[0] = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int w = snprintf(shape + n, COLUMNS_TEXT_MAX - n, "%s%s %s", n ? ", " : "",
                                 (const char *) sqlite3_column_text(st, 0), (const char *) sqlite3_column_text(st, 1));
                if (w < 0 || (size_t) w >= COLUMNS_TEXT_MAX - n)
                        return -E2BIG;
                n += (size_t) w;
        }
        return rc == SQLITE_DONE ? 0 : db_sqlite_errno(rc);
}

/* The schema this program's migrations 1..version create, in memory. */
static int schema_at(int version, sqlite3 **ret) {
        _cleanup_(sqlite3_close_v2p) sqlite3 *db = NULL;
        if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
                return -ENOMEM;
        for (const Migration *m = sqlite_migrations; m->name && m->version <= version; m++)
                if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK)
                        return -EIO; /* the embedded migrations are tested: cannot happen */
        *ret = TAKE_PTR(db);
        return 0;
}

/* The tables of today's schema: what is counted and copied. */
/* Tables that describe the present, not the data: who holds which task right now. A backup's
 * copy of them is stale by definition (the backup run's own lease is in every backup), so they
 * are never restored, counted or replaced. */
static const char *const live_tables[] = { "task_leases" };

static bool is_live_table(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(live_tables); i++)
                if (streq(name, live_tables[i]))
                        return true;
        return false;
}

static int product_tables(TableList *l) {
        _cleanup_(sqlite3_close_v2p) sqlite3 *ref = NULL;
        int r = schema_at(INT_MAX, &ref);
        if (r >= 0)
                r = list_tables(ref, l);
        size_t kept = 0;
        for (size_t i = 0; i < l->n; i++) {
                if (is_live_table(l->names[i]))
                        free(l->names[i]);
                else
                        l->names[kept++] = l->names[i];
        }
        l->n = kept;
        return r;
}

static int latest_version(void) {
        int v = 0;
        for (const Migration *m = sqlite_migrations; m->name; m++)
                v = m->version;
        return v;
}

static bool has_column(sqlite3 *db, const char *table, const char *column) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, NULL) != SQLITE_OK)
                return false;
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
        return sqlite3_step(st) == SQLITE_ROW;
}

#define NOT_OURS "ce fichier n'est pas une sauvegarde gazelle-scheduler"

/* schema_migrations lists exactly our migrations 1..n, in order, with our names and (where the
 * file recorded them) our checksums. */
static int check_migrations(sqlite3 *db, int *ret_version, char *reason, size_t reason_size) {
        if (!has_column(db, "schema_migrations", "version")) {
                snprintf(reason, reason_size, NOT_OURS " (pas de table schema_migrations)");
                return -EBADMSG;
        }
        if (!has_column(db, "schema_migrations", "name") || !has_column(db, "schema_migrations", "applied_at")) {
                snprintf(reason, reason_size, NOT_OURS " : sa table schema_migrations est celle d'un autre "
                                              "programme (Rails, golang-migrate…)");
                return -EBADMSG;
        }
        bool checksums = has_column(db, "schema_migrations", "checksum");
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, checksums ? "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
                                                  : "SELECT version, name, NULL FROM schema_migrations ORDER BY version",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, NOT_OURS " (%s)", sqlite3_errmsg(db));
                return -EBADMSG;
        }
        const Migration *m = sqlite_migrations;
        int version = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 1);
                const char *sum = (const char *) sqlite3_column_text(st, 2);
                if (sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
                        snprintf(reason, reason_size, NOT_OURS " : version de migration « %.40s » non numérique",
                                 (const char *) sqlite3_column_text(st, 0));
                        return -EBADMSG;
                }
                int v = sqlite3_column_int(st, 0);
                if (!m->name && v > version) {
                        snprintf(reason, reason_size, "schéma version %d (%.60s), plus récent que ce programme (%d) : "
                                 "mettez gazelle-scheduler à jour avant de restaurer", v, strempty(name), version);
                        return -EPROTONOSUPPORT;
                }
                if (v != m->version || !streq_ptr(name, m->name)) {
                        snprintf(reason, reason_size, NOT_OURS " : migration %d « %.60s » inconnue (attendu %d « %s »)",
                                 v, strempty(name), m->version, m->name);
                        return -EBADMSG;
                }
                if (sum) {
                        char expected[MIGRATION_CHECKSUM_MAX];
                        migration_checksum(m, expected);
                        if (!streq(sum, expected)) {
                                snprintf(reason, reason_size, NOT_OURS " : la somme de contrôle de la migration %s "
                                         "ne correspond pas", m->name);
                                return -EBADMSG;
                        }
                }
                version = v;
                m++;
        }
        if (rc != SQLITE_DONE) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(db));
                return db_sqlite_errno(rc);
        }
        if (version == 0) {
                snprintf(reason, reason_size, NOT_OURS " (schema_migrations est vide)");
                return -EBADMSG;
        }
        *ret_version = version;
        return 0;
}

/* Every table migrations 1..version create, each with exactly its columns. Other tables (an
 * administrator's own) are tolerated: they are not the product's, and only a SQLite restore
 * carries them along. */
static int check_tables(sqlite3 *db, int version, char *reason, size_t reason_size) {
        _cleanup_(sqlite3_close_v2p) sqlite3 *ref = NULL;
        _cleanup_(table_list_clear) TableList want = {};
        int r = schema_at(version, &ref);
        if (r >= 0)
                r = list_tables(ref, &want);
        if (r < 0) {
                snprintf(reason, reason_size, "lecture du schéma : %s", strerror(-r));
                return r;
        }
        for (size_t k = 0; k < want.n; k++) {
                char a[COLUMNS_TEXT_MAX], b[COLUMNS_TEXT_MAX];
                r = table_shape(ref, want.names[k], a);
                if (r >= 0)
                        r = table_shape(db, want.names[k], b);
                if (r < 0) {
                        snprintf(reason, reason_size, "lecture du schéma de %s : %s", want.names[k], strerror(-r));
                        return r;
                }
                if (!b[0]) {
                        snprintf(reason, reason_size, NOT_OURS " : table %s absente", want.names[k]);
                        return -EBADMSG;
                }
                if (!streq(a, b)) {
                        snprintf(reason, reason_size, NOT_OURS " : les colonnes de %s ne sont pas celles du schéma "
                                 "version %d", want.names[k], version);
                        return -EBADMSG;
                }
        }
        return 0;
}

int backup_inspect(const char *path, int *ret_version, char *reason, size_t reason_size) {
        struct stat st;
        if (stat(path, &st) < 0) {
                snprintf(reason, reason_size, "%s", strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(reason, reason_size, "ce n'est pas un fichier ordinaire");
                return -EBADMSG;
        }
        _cleanup_(sqlite3_close_v2p) sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                return db_sqlite_errno(rc);
        }
        int version = 0;
        int r = backup_integrity_check(db, reason, reason_size);
        if (r >= 0)
                r = check_migrations(db, &version, reason, reason_size);
        if (r >= 0)
                r = check_tables(db, version, reason, reason_size);
        if (r >= 0 && ret_version)
                *ret_version = version;
        return r;
}

int backup_verify(const char *path, char *reason, size_t reason_size) {
        return backup_inspect(path, NULL, reason, reason_size);
}

/* ---- The work copy ---------------------------------------------------------------------- */

static void unlink_sqlite_files(const char *path) {
        static const char *const suffixes[] = { "", "-journal", "-wal", "-shm" };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *p = xasprintf("%s%s", path, suffixes[i]);
                (void) unlink(p);
        }
}

/* What the store is restored from: the backup itself, read-only, when it has today's schema;
 * else a copy of it migrated forward (the backup itself is never written). */
typedef struct WorkCopy {
        char *path;      /* the migrated copy, NULL when reading the backup itself */
        Db *db;          /* the migrated copy */
        sqlite3 *backup; /* the backup, read-only */
        sqlite3 *src;    /* one of the two */
} WorkCopy;

static void work_copy_done(WorkCopy *w) {
        w->db = db_close(w->db);
        if (w->backup)
                sqlite3_close_v2(w->backup);
        w->backup = w->src = NULL;
        if (w->path)
                unlink_sqlite_files(w->path);
        w->path = mfree(w->path);
}

static int work_copy_make(const char *backup, int version, const char *dir, WorkCopy *w, char *reason,
                          size_t reason_size) {
        if (version == latest_version()) {
                int rc = sqlite3_open_v2(backup, &w->backup, SQLITE_OPEN_READONLY, NULL);
                if (rc != SQLITE_OK) {
                        snprintf(reason, reason_size, "%s", w->backup ? sqlite3_errmsg(w->backup) : sqlite3_errstr(rc));
                        return db_sqlite_errno(rc);
                }
                w->src = w->backup;
                return 0;
        }
        w->path = xasprintf("%s/.restore.%d.tmp", dir, (int) getpid());
        unlink_sqlite_files(w->path);
        {
                _cleanup_(sqlite3_close_v2p) sqlite3 *src = NULL, *dest = NULL;
                int rc = sqlite3_open_v2(backup, &src, SQLITE_OPEN_READONLY, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_open_v2(w->path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
                sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(dest, "main", src, "main") : NULL;
                if (b) {
                        rc = sqlite3_backup_step(b, -1);
                        int frc = sqlite3_backup_finish(b);
                        rc = rc == SQLITE_DONE ? frc : rc;
                } else if (rc == SQLITE_OK)
                        rc = sqlite3_errcode(dest);
                if (rc != SQLITE_OK) {
                        snprintf(reason, reason_size, "copie de travail %s : %s", w->path,
                                 dest ? sqlite3_errmsg(dest) : src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
                        return db_sqlite_errno(rc);
                }
        }
        int r = db_open_sqlite(w->path, &w->db);
        if (r >= 0)
                r = migrate_apply(w->db);
        if (r < 0) {
                snprintf(reason, reason_size, "mise à jour du schéma de la copie : %s",
                         w->db ? db_error(w->db) : strerror(-r));
                return r;
        }
        w->src = db_sqlite_handle(w->db);
        /* The forward migration must have produced exactly today's schema. */
        return check_tables(w->src, latest_version(), reason, reason_size);
}

/* ---- Counting --------------------------------------------------------------------------- */

static int count_rows(Db *db, const char *table, int64_t *ret) {
        _cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM \"%s\"", table);
        return db_query_int(db, sql, DB_NO_PARAMS, ret);
}

static int count_source_rows(sqlite3 *src, const char *table, int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM \"%s\"", table);
        int rc = sqlite3_prepare_v2(src, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return db_sqlite_errno(rc);
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int print_plan(Db *store, sqlite3 *src, const TableList *tables, const char *path, int version) {
        printf("Simulation : restauration de %s (schéma version %d%s) dans %s — rien n'est modifié.\n", path,
               version, version < latest_version() ? ", mis à jour" : "",
               db_backend(store) == DB_POSTGRESQL ? "PostgreSQL (DATABASE_URL)" : "la base SQLite");
        printf("%-28s %12s    %12s\n", "Table", "maintenant", "après");
        for (size_t i = 0; i < tables->n; i++) {
                int64_t now = 0, after = 0;
                int r = count_rows(store, tables->names[i], &now);
                if (r < 0)
                        return log_error_errno(r, "Failed to count the rows of %s in the store: %s", tables->names[i],
                                               db_error(store));
                r = count_source_rows(src, tables->names[i], &after);
                if (r < 0)
                        return log_error_errno(r, "Failed to count the rows of %s in the backup: %s", tables->names[i],
                                               sqlite3_errmsg(src));
                printf("%-28s %12lld -> %12lld\n", tables->names[i], (long long) now, (long long) after);
        }
        return 0;
}

/* ---- The copy of the store in place ------------------------------------------------------ */

static void pre_restore_name(usec_t t, char buf[static 64]) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&s, &tm); /* Montréal: tz_init() */
        strftime(buf, 64, PRE_RESTORE_PREFIX "%Y%m%d_%H%M%S.sqlite", &tm);
}

/* The store in place as <backup dir>/pre-restore-YYYYMMDD_HHMMSS.sqlite; its path in *ret. */
static int keep_pre_restore(const Config *c, Db *store, char **ret) {
        char reason[512] = "";
        _cleanup_free_ char *tmp = xasprintf("%s/.pre-restore.%d.tmp", c->backup_dir, (int) getpid());
        unlink_sqlite_files(tmp);
        RunContext ctx = {
                .config = c,
                .db = store,
                .task = task_get(TASK_BACKUP),
                .log = { .task = "backup" },
        };
        _cleanup_(cJSON_Deletep) cJSON *stats = cJSON_CreateObject();
        int r = backup_copy_store(&ctx, tmp, stats, reason, sizeof reason);
        if (r >= 0) {
                _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fsync(fd) < 0)
                        r = -errno;
                if (r < 0)
                        snprintf(reason, sizeof reason, "fsync : %s", strerror(-r));
        }
        for (int attempt = 0; r >= 0 && attempt < 10; attempt++) {
                char name[64];
                pre_restore_name(now_realtime() + (usec_t) attempt * USEC_PER_SEC, name);
                _cleanup_free_ char *final = xasprintf("%s/%s", c->backup_dir, name);
                if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) >= 0) {
                        (void) fsync_directory(c->backup_dir);
                        *ret = TAKE_PTR(final);
                        return 0;
                }
                if (errno != EEXIST) {
                        r = -errno;
                        snprintf(reason, sizeof reason, "renommage : %s", strerror(errno));
                }
        }
        unlink_sqlite_files(tmp);
        if (r >= 0) {
                r = -EEXIST;
                snprintf(reason, sizeof reason, "aucun nom libre");
        }
        return log_error_errno(r, "Refusing to restore: the store in place could not be kept in %s (%s). Nothing "
                               "was changed: free space or fix the rights of BACKUP_DIR, then retry.",
                               c->backup_dir, reason);
}

/* ---- Replacing the store ---------------------------------------------------------------- */

static int restore_sqlite(Db *store, sqlite3 *src, const char *path) {
        sqlite3 *dest = db_sqlite_handle(store);
        /* One write transaction on the live store: readers see the old or the new database. */
        sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
        if (!b)
                return log_error_errno(EIO, "Restore of %s failed, the store is unchanged: %s", path, sqlite3_errmsg(dest));
        int rc = sqlite3_backup_step(b, -1);
        int frc = sqlite3_backup_finish(b);
        if (rc != SQLITE_DONE || frc != SQLITE_OK)
                return log_error_errno(db_sqlite_errno(rc != SQLITE_DONE ? rc : frc),
                                       "Restore of %s failed, the store is unchanged: %s", path, sqlite3_errmsg(dest));
        /* The backup's leases are its own run's: every task is locked out, none is live. */
        for (size_t i = 0; i < ELEMENTSOF(live_tables); i++) {
                _cleanup_free_ char *sql = xasprintf("DELETE FROM \"%s\"", live_tables[i]);
                int r = db_exec(store, sql, DB_NO_PARAMS);
                if (r < 0)
                        log_warning("Failed to clear %s after the restore, ignoring (stale leases expire by "
                                    "themselves): %s", live_tables[i], db_error(store));
        }
        /* A file of today's schema made before checksums were recorded brought its own table. */
        if (migrate_record_checksums(store) < 0)
                log_warning("Failed to record the migrations' checksums after the restore, ignoring (the next "
                            "migration records them): %s", db_error(store));
        return 0;
}

/* One value in COPY's text format: backslash, tab, newline and carriage return escaped. */
static void copy_field(Buf *line, const char *v) {
        if (!v) {
                buf_puts(line, "\\N");
                return;
        }
        for (const char *p = v; *p;) {
                size_t plain = strcspn(p, "\\\t\n\r");
                buf_add(line, p, plain);
                p += plain;
                if (!*p)
                        break;
                buf_puts(line, *p == '\\' ? "\\\\" : *p == '\t' ? "\\t" : *p == '\n' ? "\\n" : "\\r");
                p++;
        }
}

static int pg_copy_failed(Db *pg, PGconn *conn) {
        db_set_error(pg, "PostgreSQL: %s", PQerrorMessage(conn));
        return -EIO;
}

/* Every row of table from the work copy into PostgreSQL with COPY (its bulk load), in the
 * transaction the caller opened. Values go as text: PostgreSQL reads each in its column's type
 * (ISO timestamps, 0/1 booleans, JSON text, UUIDs). */
static int copy_table_to_pg(Db *pg, sqlite3 *src, const char *table, int64_t *rows) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *cols = NULL, *st = NULL;
        _cleanup_free_ char *info = xasprintf("SELECT name FROM pragma_table_info('%s')", table);
        if (sqlite3_prepare_v2(src, info, -1, &cols, NULL) != SQLITE_OK)
                return db_set_error(pg, "%s", sqlite3_errmsg(src)), -EIO;
        Buf names = {};
        int n = 0;
        while (sqlite3_step(cols) == SQLITE_ROW)
                buf_printf(&names, "%s\"%s\"", n++ ? ", " : "", (const char *) sqlite3_column_text(cols, 0));
        _cleanup_free_ char *select = xasprintf("SELECT %s FROM \"%s\"", strempty(names.data), table);
        _cleanup_free_ char *copy = xasprintf("COPY \"%s\" (%s) FROM STDIN", table, strempty(names.data));
        free(names.data);
        if (sqlite3_prepare_v2(src, select, -1, &st, NULL) != SQLITE_OK)
                return db_set_error(pg, "%s", sqlite3_errmsg(src)), -EIO;

        PGconn *conn = db_pg_handle(pg);
        PGresult *res = PQexec(conn, copy);
        bool started = PQresultStatus(res) == PGRES_COPY_IN;
        PQclear(res);
        if (!started)
                return pg_copy_failed(pg, conn);
        Buf chunk = {};
        int rc, r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; i < n; i++) {
                        if (i)
                                buf_puts(&chunk, "\t");
                        copy_field(&chunk, (const char *) sqlite3_column_text(st, i));
                }
                buf_puts(&chunk, "\n");
                (*rows)++;
                if (chunk.len >= COPY_CHUNK_BYTES) {
                        if (PQputCopyData(conn, chunk.data, (int) chunk.len) != 1) {
                                r = pg_copy_failed(pg, conn);
                                break;
                        }
                        chunk.len = 0;
                }
        }
        if (r >= 0 && rc != SQLITE_DONE) {
                db_set_error(pg, "%s", sqlite3_errmsg(src));
                r = -EIO;
        }
        if (r >= 0 && chunk.len > 0 && PQputCopyData(conn, chunk.data, (int) chunk.len) != 1)
                r = pg_copy_failed(pg, conn);
        free(chunk.data);
        /* Ending with an error message aborts the COPY, and the caller's transaction with it. */
        if (PQputCopyEnd(conn, r < 0 ? "restore aborted" : NULL) != 1 && r >= 0)
                r = pg_copy_failed(pg, conn);
        while ((res = PQgetResult(conn))) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && r >= 0)
                        r = pg_copy_failed(pg, conn);
                PQclear(res);
        }
        return r;
}

/* Sequences behind serial columns (alert_ledger.id) continue after the restored ids. */
static int reset_sequences(Db *pg, const TableList *tables) {
        for (size_t i = 0; i < tables->n; i++) {
                _cleanup_free_ char *column = NULL;
                int r = db_query_text(pg,
                                      "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                      "current_schema() AND table_name = $1 AND column_default LIKE 'nextval(%'",
                                      DB_PARAMS(DBV_TEXT_OR_NULL(tables->names[i])), &column);
                if (r < 0)
                        return r;
                if (!column)
                        continue;
                _cleanup_free_ char *sql = xasprintf(
                        "SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(\"%s\"), 0) + 1, false) FROM \"%s\"",
                        column, tables->names[i]);
                r = db_exec(pg, sql, DB_PARAMS(DBV_TEXT_OR_NULL(tables->names[i]), DBV_TEXT_OR_NULL(column)));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int restore_postgresql(Db *pg, sqlite3 *src, const TableList *tables, const char *path) {
        int64_t rows = 0;
        _cleanup_free_ char *leased = NULL;
        int r = db_begin(pg);
        /* No host may take a lease until we commit, and none may hold one now. */
        if (r >= 0)
                r = db_exec(pg, "LOCK TABLE task_leases IN SHARE ROW EXCLUSIVE MODE", DB_NO_PARAMS);
        if (r >= 0)
                r = db_query_text(pg, "SELECT task_name || ' (' || host || ')' FROM task_leases WHERE expires_at > now() "
                                      "LIMIT 1", DB_NO_PARAMS, &leased);
        if (r >= 0 && leased) {
                (void) db_rollback(pg);
                return log_error_errno(EBUSY, "Refusing to restore while %s runs: wait for it to finish and retry. "
                                       "Nothing was changed.", leased);
        }
        /* Deleting in reverse order of the list, inserting in order: no foreign key exists
         * today, and this order stays right if one ever does between sorted names. */
        for (size_t i = tables->n; r >= 0 && i > 0; i--) {
                _cleanup_free_ char *sql = xasprintf("DELETE FROM \"%s\"", tables->names[i - 1]);
                r = db_exec(pg, sql, DB_NO_PARAMS);
        }
        for (size_t i = 0; r >= 0 && i < tables->n; i++)
                r = copy_table_to_pg(pg, src, tables->names[i], &rows);
        if (r >= 0)
                r = reset_sequences(pg, tables);
        if (r >= 0)
                r = db_commit(pg);
        if (r < 0) {
                (void) db_rollback(pg);
                return log_error_errno(r, "Restore of %s into PostgreSQL failed and was rolled back, the store is "
                                       "unchanged: %s", path, db_error(pg));
        }
        return 0;
}

/* A live lease: a run in progress, on this host or another sharing the PostgreSQL store. */
static int live_lease(Db *db, const Task **ret_task, TaskLeaseHolder *ret_holder) {
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                int r = task_lease_get(db, t, ret_holder);
                if (r < 0)
                        return r;
                if (r > 0 && !ret_holder->expired) {
                        *ret_task = t;
                        return 1;
                }
        }
        return 0;
}

/* ---- The command ------------------------------------------------------------------------ */

static int restore_locked(const Config *c, const char *path, int version, bool dry_run) {
        char reason[512] = "";
        _cleanup_(db_closep) Db *store = NULL;
        _cleanup_(work_copy_done) WorkCopy work = {};
        _cleanup_(table_list_clear) TableList tables = {};
        const char *where = c->database_url ? "PostgreSQL (DATABASE_URL)" : c->sqlite_path;

        int r = store_open(c, &store);
        if (r < 0)
                return log_error_errno(r, "Refusing to restore: the store %s cannot be opened (%s). Nothing was changed.",
                                       where, store ? db_error(store) : strerror(-r));
        const Task *leased = NULL;
        TaskLeaseHolder holder = {};
        r = live_lease(store, &leased, &holder);
        if (r < 0)
                return log_error_errno(r, "Refusing to restore: cannot read task_leases (%s). Nothing was changed.",
                                       db_error(store));
        if (r > 0)
                return log_error_errno(EBUSY, "Refusing to restore while %s runs on %s (run %s, it holds the task's "
                                       "lease): wait for it to finish and retry. Nothing was changed.", leased->label,
                                       holder.host, holder.run_id);
        r = mkdir_p(c->backup_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Refusing to restore: the backup directory %s cannot be created (%m). Nothing "
                                       "was changed: check BACKUP_DIR and its rights.", c->backup_dir);
        r = work_copy_make(path, version, c->backup_dir, &work, reason, sizeof reason);
        if (r < 0)
                return log_error_errno(r, "Refusing to restore %s: %s. Nothing was changed.", path, reason);
        r = product_tables(&tables);
        if (r < 0)
                return log_error_errno(r, "Refusing to restore %s: cannot list the product's tables: %m. Nothing was "
                                       "changed.", path);
        if (dry_run)
                return print_plan(store, work.src, &tables, path, version);

        _cleanup_free_ char *kept = NULL;
        r = keep_pre_restore(c, store, &kept);
        if (r < 0)
                return r;
        r = db_backend(store) == DB_POSTGRESQL ? restore_postgresql(store, work.src, &tables, path)
                                                : restore_sqlite(store, work.src, path);
        if (r < 0) {
                log_error_errno(r, "The store in place is also kept in %s.", kept);
                return r;
        }
        log_info("Base restaurée depuis %s dans %s (schéma version %d%s). L'ancienne base est conservée dans %s "
                 "(gazelle-scheduler restore %s pour revenir en arrière).", path, where, version,
                 version < latest_version() ? ", mis à jour" : "", kept, kept);
        return 0;
}

int backup_restore(const Config *c, const char *path, bool dry_run) {
        char reason[512] = "";
        _cleanup_(task_locks_release) TaskLocks locks = TASK_LOCKS_INIT;
        const Task *busy = NULL;
        int version = 0;

        /* A file another account could have swapped is no backup of ours (sshd's rule). */
        _cleanup_free_ char *dir = dirname_of(path);
        int r = private_dir_check("BACKUP_DIR", c->backup_dir, reason, sizeof reason);
        if (r >= 0)
                r = private_dir_check("le répertoire de la sauvegarde", dir, reason, sizeof reason);
        if (r >= 0)
                r = private_file_check(path, reason, sizeof reason);
        if (r < 0) {
                log_error_errno(r, "Refusing to restore %s: %s. Nothing was changed.", path, reason);
                return EXIT_TASK_FAILED;
        }
        r = backup_inspect(path, &version, reason, sizeof reason);
        if (r < 0) {
                log_error_errno(r, "Refusing to restore %s: %s. Nothing was changed.", path, reason);
                return EXIT_TASK_FAILED;
        }
        r = task_locks_take_all(c, &locks, &busy);
        if (r == -EBUSY)
                log_error_errno(r, "Refusing to restore while a task is running (%s): wait for it to finish and "
                                   "retry. Nothing was changed.", busy->label);
        else if (r < 0)
                log_error_errno(r, "Refusing to restore: cannot lock the tasks in the state directory %s (%m). "
                                "Nothing was changed: check the directory's rights.", c->state_dir);
        else
                r = restore_locked(c, path, version, dry_run);
        return r < 0 ? EXIT_TASK_FAILED : EXIT_TASK_OK;
}
