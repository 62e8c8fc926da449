/* SPDX-License-Identifier: MIT */
/* backup.c — Backup SQL. A SQLite source in WAL mode is copied as a file image of one pinned
 * snapshot and compared page by page with that snapshot (backup-image.c); other SQLite sources
 * go through SQLite's online backup API (one pinned read snapshot when possible, otherwise
 * short steps writers can slip between) and a full integrity check of the copy. A PostgreSQL
 * store is streamed table by table into a file with the embedded schema, so one restore path
 * serves both. Every copy is written under a temporary name, verified, fsynced and renamed;
 * rotation runs only after that, and deletes only names of our exact pattern. */
#include "backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "backup-image.h"
#include "migrate.h"

#define BACKUP_NAME_LEN (sizeof(BACKUP_PREFIX) - 1 + 15 + sizeof(BACKUP_SUFFIX) - 1)
#define BACKUP_NAME_MAX 64
#define STEP_PAGES 1024                /* 4 MiB at 4 KiB pages: a few ms under a shared lock */
#define PINNED_STEP_PAGES 16384        /* a pinned WAL snapshot blocks no writer: bigger steps */
#define SOURCE_BUSY_MAX_USEC (120 * USEC_PER_SEC)
#define ROLLBACK_JOURNAL_PAUSE_MS 5    /* lets writers of a non-WAL source in between steps */
#define EXPORT_BATCH_ROWS 5000

/* The embedded schema defines far fewer tables than this. */
#define PRODUCT_TABLES_MAX 64

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3 *, sqlite3_close_v2);

bool backup_name_valid(const char *name) {
        if (strlen(name) != BACKUP_NAME_LEN || strncmp(name, BACKUP_PREFIX, strlen(BACKUP_PREFIX)) != 0)
                return false;
        const char *p = name + strlen(BACKUP_PREFIX);
        for (int i = 0; i < 15; i++)
                if (i == 8 ? p[i] != '_' : (p[i] < '0' || p[i] > '9'))
                        return false;
        return streq(p + 15, BACKUP_SUFFIX);
}

/* SQLite says SQLITE_FULL only for ENOSPC: a quota (EDQUOT) or a file size limit (EFBIG,
 * RLIMIT_FSIZE) come back as SQLITE_IOERR_WRITE, "disk I/O error". The system errno of the
 * destination's last failure tells them apart. */
static int dest_errno(sqlite3 *dest, int rc) {
        int e = sqlite3_system_errno(dest);
        if ((rc & 0xff) == SQLITE_IOERR && (e == ENOSPC || e == EDQUOT || e == EFBIG))
                return -e;
        return db_sqlite_errno(rc);
}

/* A people-readable reason for the most likely failures; the raw SQLite text follows it. */
static const char *failure_hint(int r) {
        switch (-r) {
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
                return "disque plein ou quota atteint : libérez de l'espace dans le répertoire des sauvegardes";
        case EACCES:
        case EPERM:
        case EROFS:
                return "droits insuffisants : vérifiez BACKUP_DIR et les droits du répertoire";
        case ENOENT:
                return "fichier ou répertoire introuvable : vérifiez BACKUP_DIR et BACKUP_SQLITE_PATH";
        case ENOTDIR:
        case EISDIR:
        case ENAMETOOLONG:
        case ELOOP:
                return "chemin invalide (un élément du chemin n'est pas un répertoire, ou l'inverse) : vérifiez "
                       "BACKUP_DIR et BACKUP_SQLITE_PATH";
        case EBADMSG:
                return "base source corrompue ou illisible";
        default:
                return "erreur d'entrée/sortie";
        }
}

int backup_integrity_check(sqlite3 *db, char *reason, size_t reason_size) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(db));
                return db_sqlite_errno(rc);
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(db));
                return db_sqlite_errno(rc);
        }
        const char *v = (const char *) sqlite3_column_text(st, 0);
        if (!v || !streq(v, "ok")) {
                snprintf(reason, reason_size, "contrôle d'intégrité : %.200s", v ? v : "?");
                return -EBADMSG;
        }
        return 0;
}

static int fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

static bool journal_mode_is_wal(sqlite3 *db) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                return false;
        const char *m = (const char *) sqlite3_column_text(st, 0);
        return m && streq(m, "wal");
}

/* The backup API copies page 1 verbatim, so a copy of a WAL store is itself marked WAL (the
 * integrity check already reopened it so): every later reader (verify, restore, sqlite3) would
 * leave -wal and -shm files next to it that rotation never deletes, and a read-only reader
 * needs a writable directory. A backup is one self-contained file in rollback-journal mode. */
static int make_self_contained(sqlite3 *dest, char *reason, size_t reason_size) {
        int rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(dest));
                return dest_errno(dest, rc);
        }
        return 0;
}

/* Copies src into the file dest_path with the backup API; the copy is one consistent snapshot. */
static int copy_sqlite_backup_api(RunContext *ctx, sqlite3 *src, const char *dest_path, char *reason,
                                  size_t reason_size) {
        _cleanup_(sqlite3_close_v2p) sqlite3 *dest = NULL;
        int rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
                return db_sqlite_errno(rc);
        }
        /* The temporary copy needs no journal: it is fsynced and renamed only once complete. */
        (void) sqlite3_exec(dest, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", NULL, NULL, NULL);

        /* In WAL mode a read transaction pins one snapshot for all steps and never blocks a
         * writer; without WAL each step takes a short shared lock and a write in between makes
         * SQLite restart the copy, which is still consistent. */
        bool pinned = journal_mode_is_wal(src);
        if (pinned && (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK))
                pinned = false;

        sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
        if (!b) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(dest));
                if (pinned)
                        (void) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
                return db_sqlite_errno(sqlite3_errcode(dest));
        }
        unsigned steps = 0;
        usec_t busy_since = 0;
        do {
                rc = sqlite3_backup_step(b, pinned ? PINNED_STEP_PAGES : STEP_PAGES);
                /* A source locked by someone else for minutes is a failure to report, not a
                 * reason to wait until TimeoutStartSec= kills the run. */
                if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
                        if (!busy_since)
                                busy_since = now_monotonic();
                        else if (now_monotonic() - busy_since > SOURCE_BUSY_MAX_USEC)
                                break;
                } else
                        busy_since = 0;
                if (++steps % (pinned ? 16 : 64) == 0) {
                        int total = sqlite3_backup_pagecount(b), left = sqlite3_backup_remaining(b);
                        log_progress(&ctx->log, "Sauvegarde : %d %% (%d/%d pages)",
                                     total ? 100 * (total - left) / total : 100, total - left, total);
                }
                if (run_cancelled(ctx)) {
                        rc = SQLITE_INTERRUPT;
                        break;
                }
                if (!pinned && (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED))
                        sqlite3_sleep(ROLLBACK_JOURNAL_PAUSE_MS);
        } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
        int frc = sqlite3_backup_finish(b);
        if (pinned)
                (void) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_INTERRUPT) {
                snprintf(reason, reason_size, "interrompue");
                return -EINTR;
        }
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
                snprintf(reason, reason_size, "la base source est verrouillée par un autre programme depuis plus "
                                              "de %llu s", (unsigned long long) (SOURCE_BUSY_MAX_USEC / USEC_PER_SEC));
                return -EBUSY;
        }
        if (rc != SQLITE_DONE || frc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(dest));
                return dest_errno(dest, rc != SQLITE_DONE ? rc : frc);
        }
        int r = backup_integrity_check(dest, reason, reason_size);
        if (r < 0)
                return r;
        return make_self_contained(dest, reason, reason_size);
}

/* Copies src into the file dest_path: one consistent snapshot of src, verified. */
static int copy_sqlite(RunContext *ctx, sqlite3 *src, const char *dest_path, cJSON *stats, char *reason,
                       size_t reason_size) {
        if (journal_mode_is_wal(src)) {
                ImageStats is;
                int r = backup_image_copy(ctx, src, dest_path, &is, reason, reason_size);
                if (r != -EOPNOTSUPP) {
                        if (r >= 0) {
                                cJSON_AddStringToObject(stats, "method", "image");
                                cJSON_AddNumberToObject(stats, "wal_frames", is.wal_frames);
                                cJSON_AddNumberToObject(stats, "verified_pages", is.verified);
                                cJSON_AddNumberToObject(stats, "copy_ms", is.copy_ms);
                                cJSON_AddNumberToObject(stats, "verify_ms", is.verify_ms);
                                cJSON_AddNumberToObject(stats, "sync_ms", is.sync_ms);
                        }
                        return r;
                }
        }
        cJSON_AddStringToObject(stats, "method", "backup-api");
        return copy_sqlite_backup_api(ctx, src, dest_path, reason, reason_size);
}

/* The column list of table in the SQLite copy, and the PostgreSQL expressions that produce
 * each column in SQLite's representation (ISO UTC text for timestamps, 0/1 for booleans). */
static int export_select(Db *pg, sqlite3 *dest, const char *table, char **ret_select, char **ret_insert) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *info = NULL;
        _cleanup_free_ char *pragma = xasprintf("PRAGMA table_info(\"%s\")", table);
        if (sqlite3_prepare_v2(dest, pragma, -1, &info, NULL) != SQLITE_OK)
                return -EIO;

        size_t cap = 4096;
        char *sel = xmalloc(cap), *ins = xmalloc(cap), *vals = xmalloc(cap);
        size_t ns = 0, ni = 0, nv = 0;
        int ncol = 0;
        sel[0] = ins[0] = vals[0] = 0;
        while (sqlite3_step(info) == SQLITE_ROW) {
                const char *col = (const char *) sqlite3_column_text(info, 1);
                _cleanup_free_ char *type = NULL;
                int r = db_query_text(pg,
                                      "SELECT data_type FROM information_schema.columns WHERE table_name = $1 "
                                      "AND column_name = $2 AND table_schema = current_schema()",
                                      DB_PARAMS(DBV_TEXT_OR_NULL(table), DBV_TEXT_OR_NULL(col)), &type);
                if (r < 0) {
                        free(sel), free(ins), free(vals);
                        return r;
                }
                _cleanup_free_ char *expr = NULL;
                if (!type)
                        expr = xstrdup("NULL"); /* column added later in SQLite only */
                else if (strncmp(type, "timestamp", 9) == 0)
                        expr = xasprintf("to_char(\"%s\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", col);
                else if (streq(type, "boolean"))
                        expr = xasprintf("\"%s\"::int", col);
                else
                        expr = xasprintf("\"%s\"::text", col);
                if (ns + strlen(expr) + 8 >= cap || ni + strlen(col) + 8 >= cap || nv + 16 >= cap) {
                        free(sel), free(ins), free(vals);
                        return -E2BIG;
                }
                ns += sprintf(sel + ns, "%s%s", ncol ? ", " : "", expr);
                ni += sprintf(ins + ni, "%s\"%s\"", ncol ? ", " : "", col);
                nv += sprintf(vals + nv, "%s?%d", ncol ? ", " : "", ncol + 1);
                ncol++;
        }
        *ret_select = xasprintf("SELECT %s FROM \"%s\"", sel, table);
        *ret_insert = xasprintf("INSERT INTO \"%s\" (%s) VALUES (%s)", table, ins, vals);
        free(sel), free(ins), free(vals);
        return ncol;
}

static int export_table(RunContext *ctx, sqlite3 *dest, const char *table, int64_t *rows, char *reason,
                        size_t reason_size) {
        _cleanup_free_ char *select = NULL, *insert = NULL;
        int ncol = export_select(ctx->db, dest, table, &select, &insert);
        if (ncol < 0) {
                snprintf(reason, reason_size, "%s : %s", table, db_error(ctx->db));
                return ncol;
        }
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(dest, insert, -1, &st, NULL);
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "%s : %s", table, sqlite3_errmsg(dest));
                return db_sqlite_errno(rc);
        }
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(ctx->db, select, DB_NO_PARAMS, &c);
        while (r >= 0 && (r = db_cursor_next(c)) > 0) {
                for (int i = 0; i < ncol; i++) {
                        const char *v = db_cursor_text(c, i);
                        rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i + 1);
                }
                rc = sqlite3_step(st);
                sqlite3_reset(st);
                if (rc != SQLITE_DONE) {
                        snprintf(reason, reason_size, "%s : %s", table, sqlite3_errmsg(dest));
                        return db_sqlite_errno(rc);
                }
                if (++*rows % EXPORT_BATCH_ROWS == 0) {
                        if (run_cancelled(ctx)) {
                                snprintf(reason, reason_size, "interrompue");
                                return -EINTR;
                        }
                        log_progress(&ctx->log, "Sauvegarde : %s, %lld lignes", table, (long long) *rows);
                }
        }
        if (r < 0)
                snprintf(reason, reason_size, "%s : %s", table, db_error(ctx->db));
        return r;
}

/* Every table the embedded schema creates is one the product owns: exporting what the
 * migrations made (in creation order) means a new table can never be forgotten here. */
static size_t product_tables(sqlite3 *dest, char *names[static PRODUCT_TABLES_MAX]) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        size_t n = 0;
        if (sqlite3_prepare_v2(dest,
                               "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                               "AND name <> 'schema_migrations' ORDER BY rowid",
                               -1, &st, NULL) != SQLITE_OK)
                return 0;
        while (n < PRODUCT_TABLES_MAX && sqlite3_step(st) == SQLITE_ROW)
                names[n++] = xstrdup((const char *) sqlite3_column_text(st, 0));
        return n;
}

/* PostgreSQL store → a SQLite file with the embedded schema, read in one REPEATABLE READ
 * snapshot so that the tables agree with each other. */
static int export_postgresql(RunContext *ctx, const char *dest_path, cJSON *stats, char *reason, size_t reason_size) {
        _cleanup_(db_closep) Db *dest_db = NULL;
        int r = db_open_sqlite(dest_path, &dest_db);
        if (r < 0 || (r = migrate_apply(dest_db)) < 0) {
                snprintf(reason, reason_size, "%s", dest_db ? db_error(dest_db) : "SQLite");
                return r;
        }
        sqlite3 *dest = db_sqlite_handle(dest_db);
        (void) sqlite3_exec(dest, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);

        r = db_exec(ctx->db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", DB_NO_PARAMS);
        if (r < 0) {
                snprintf(reason, reason_size, "%s", db_error(ctx->db));
                return r;
        }
        cJSON *tables = cJSON_AddObjectToObject(stats, "tables");
        char *names[PRODUCT_TABLES_MAX];
        size_t n = product_tables(dest, names);
        if (n == 0) {
                snprintf(reason, reason_size, "schéma embarqué sans tables : %s", sqlite3_errmsg(dest));
                r = -EIO;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                int64_t rows = 0;
                r = export_table(ctx, dest, names[i], &rows, reason, reason_size);
                cJSON_AddNumberToObject(tables, names[i], (double) rows);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        (void) db_exec(ctx->db, "COMMIT", DB_NO_PARAMS);
        if (r < 0)
                return r;
        if (sqlite3_exec(dest, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
                snprintf(reason, reason_size, "%s", sqlite3_errmsg(dest));
                return db_sqlite_errno(sqlite3_errcode(dest));
        }
        return backup_integrity_check(dest, reason, reason_size);
}

static int open_source(const char *path, sqlite3 **ret, char *reason, size_t reason_size) {
        struct stat st;
        if (stat(path, &st) < 0) {
                snprintf(reason, reason_size, "base source %s : %s", path, strerror(errno));
                return -errno;
        }
        int rc = sqlite3_open_v2(path, ret, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_close_v2(*ret);
                rc = sqlite3_open_v2(path, ret, SQLITE_OPEN_READONLY, NULL);
        }
        if (rc != SQLITE_OK) {
                snprintf(reason, reason_size, "base source %s : %s", path, *ret ? sqlite3_errmsg(*ret) : sqlite3_errstr(rc));
                return db_sqlite_errno(rc);
        }
        sqlite3_busy_timeout(*ret, 10000);
        return 0;
}

int backup_copy_store(RunContext *ctx, const char *dest_path, cJSON *stats, char *reason, size_t reason_size) {
        if (db_backend(ctx->db) == DB_POSTGRESQL)
                return export_postgresql(ctx, dest_path, stats, reason, reason_size);
        return copy_sqlite(ctx, db_sqlite_handle(ctx->db), dest_path, stats, reason, reason_size);
}

int backup_rotate(const char *dir, unsigned keep, unsigned *kept, unsigned *deleted) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);
        if (n < 0)
                return -errno;
        *kept = *deleted = 0;
        int r = 0;
        /* alphasort of fixed-width timestamps is chronological: walk newest first. */
        for (int i = n - 1; i >= 0; i--) {
                if (backup_name_valid(list[i]->d_name)) {
                        if (*kept < keep)
                                (*kept)++;
                        else {
                                _cleanup_free_ char *p = xasprintf("%s/%s", dir, list[i]->d_name);
                                if (unlink(p) >= 0)
                                        (*deleted)++;
                                else if (r == 0)
                                        r = -errno;
                        }
                }
                free(list[i]);
        }
        free(list);
        return r;
}

static void backup_name_at(usec_t t, char buf[static BACKUP_NAME_MAX]) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&s, &tm); /* Montréal: tz_init() */
        strftime(buf, BACKUP_NAME_MAX, BACKUP_PREFIX "%Y%m%d_%H%M%S" BACKUP_SUFFIX, &tm);
}

/* Renames tmp to a name that does not exist yet: two backups in one second get the next
 * second's name rather than overwrite each other. */
static int publish(const char *dir, const char *tmp, usec_t t, char name[static BACKUP_NAME_MAX]) {
        for (int attempt = 0; attempt < 10; attempt++) {
                backup_name_at(t + (usec_t) attempt * USEC_PER_SEC, name);
                _cleanup_free_ char *final = xasprintf("%s/%s", dir, name);
                if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) >= 0)
                        return fsync_directory(dir);
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static void unlink_tmp(char **path) {
        if (*path) {
                (void) unlink(*path);
                _cleanup_free_ char *journal = xasprintf("%s-journal", *path);
                (void) unlink(journal);
                free(*path);
        }
}

/* Temporary files of runs that were killed (SIGKILL, power loss). The runner holds the task
 * lock, so no live backup owns any of them. */
static void remove_stale_temporaries(const char *dir) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, NULL);
        for (int i = 0; i < n; i++) {
                /* The copy itself, and the -wal/-shm SQLite keeps beside it while it checks it. */
                static const char *const suffixes[] = { ".tmp", ".tmp-journal", ".tmp-wal", ".tmp-shm" };
                const char *name = list[i]->d_name;
                size_t len = strlen(name);
                for (size_t k = 0; k < ELEMENTSOF(suffixes) && strncmp(name, ".db_backup.", 11) == 0; k++) {
                        size_t sl = strlen(suffixes[k]);
                        if (len > 11 + sl && streq(name + len - sl, suffixes[k])) {
                                _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
                                (void) unlink(p);
                                break;
                        }
                }
                free(list[i]);
        }
        free(list);
}

int backup_task_run(RunContext *ctx, TaskResult *result) {
        const Config *c = ctx->config;
        char reason[512] = "";
        const char *source;
        int r;

        if (c->backup_sqlite_path)
                source = c->backup_sqlite_path;
        else
                source = db_backend(ctx->db) == DB_SQLITE ? c->sqlite_path : "PostgreSQL (DATABASE_URL)";
        cJSON_AddStringToObject(result->stats, "source", source);

        char why[512];
        r = private_dir_check("BACKUP_DIR", c->backup_dir, why, sizeof why);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Sauvegarde refusée : %s", why);
                return r;
        }
        r = mkdir_p(c->backup_dir, 0700);
        if (r < 0) {
                _cleanup_free_ char *ro = path_on_read_only_mount(c->backup_dir)
                        ? read_only_sandbox_hint(c->backup_dir, ctx->task->unit) : NULL;
                task_result_set(result, RUN_ERROR, "Sauvegarde impossible : le répertoire %s ne peut être créé (%s) — %s",
                                c->backup_dir, strerror(-r), ro ?: failure_hint(r));
                return r;
        }
        if (ctx->options.dry_run) {
                char name[BACKUP_NAME_MAX];
                backup_name_at(now_realtime(), name);
                task_result_set(result, RUN_SUCCESS, "Simulation : %s serait sauvegardée dans %s/%s", source,
                                c->backup_dir, name);
                return 0;
        }

        remove_stale_temporaries(c->backup_dir);
        usec_t t0 = now_monotonic();
        _cleanup_(unlink_tmp) char *tmp = xasprintf("%s/.db_backup.%d.tmp", c->backup_dir, (int) getpid());
        (void) unlink(tmp);
        log_progress(&ctx->log, "Sauvegarde de %s en cours", source);

        if (!c->backup_sqlite_path && db_backend(ctx->db) == DB_POSTGRESQL)
                r = export_postgresql(ctx, tmp, result->stats, reason, sizeof reason);
        else if (!c->backup_sqlite_path)
                r = copy_sqlite(ctx, db_sqlite_handle(ctx->db), tmp, result->stats, reason, sizeof reason);
        else {
                _cleanup_(sqlite3_close_v2p) sqlite3 *src = NULL;
                r = open_source(c->backup_sqlite_path, &src, reason, sizeof reason);
                if (r >= 0)
                        r = copy_sqlite(ctx, src, tmp, result->stats, reason, sizeof reason);
        }
        if (r >= 0 && (r = fsync_path(tmp)) < 0)
                snprintf(reason, sizeof reason, "fsync : %s", strerror(-r));

        char name[BACKUP_NAME_MAX] = "";
        if (r >= 0 && (r = publish(c->backup_dir, tmp, now_realtime(), name)) < 0)
                snprintf(reason, sizeof reason, "renommage : %s", strerror(-r));
        if (r < 0) {
                /* Under the unit's ProtectSystem=strict a path outside ReadWritePaths= is read-only,
                 * and SQLite reports that as "cannot open" (ENOENT): say the real cause. */
                _cleanup_free_ char *source_dir = c->backup_sqlite_path ? dirname_of(c->backup_sqlite_path) : NULL;
                _cleanup_free_ char *ro = path_on_read_only_mount(c->backup_dir)
                        ? read_only_sandbox_hint(c->backup_dir, ctx->task->unit)
                        : source_dir && path_on_read_only_mount(source_dir)
                                ? read_only_sandbox_hint(source_dir, ctx->task->unit)
                                : NULL;
                task_result_set(result, RUN_ERROR,
                                "Sauvegarde échouée (%s) : %s. Les sauvegardes précédentes sont intactes.",
                                ro ?: failure_hint(r), reason);
                return r;
        }
        free(TAKE_PTR(tmp)); /* published: nothing to clean up */

        _cleanup_free_ char *final = xasprintf("%s/%s", c->backup_dir, name);
        struct stat st = {};
        (void) stat(final, &st);
        unsigned kept = 0, deleted = 0;
        int rr = backup_rotate(c->backup_dir, c->backup_keep, &kept, &deleted);
        uint64_t ms = (now_monotonic() - t0) / USEC_PER_MSEC;

        cJSON_AddStringToObject(result->stats, "file", name);
        cJSON_AddStringToObject(result->stats, "path", final);
        cJSON_AddNumberToObject(result->stats, "bytes", (double) st.st_size);
        cJSON_AddStringToObject(result->stats, "integrity", "ok");
        cJSON_AddNumberToObject(result->stats, "kept", kept);
        cJSON_AddNumberToObject(result->stats, "deleted", deleted);
        cJSON_AddNumberToObject(result->stats, "duration_ms", (double) ms);

        _cleanup_free_ char *f_file = xasprintf("GAZELLE_BACKUP_FILE=%s", final);
        _cleanup_free_ char *f_bytes = xasprintf("GAZELLE_BACKUP_BYTES=%lld", (long long) st.st_size);
        const char *extra[] = { f_file, f_bytes, NULL };
        log_full(&ctx->log, LOG_INFO, 0, MESSAGE_ID_BACKUP_CREATED, NULL, extra,
                 "Sauvegarde %s créée (%.1f Mo, intégrité ok) en %.1f s", final, st.st_size / 1e6, ms / 1e3);

        if (rr < 0) {
                task_result_set(result, RUN_WARNING,
                                "Sauvegarde %s créée (%.1f Mo, intégrité ok), mais la rotation a échoué (%s) : "
                                "vérifiez les droits de %s", name, st.st_size / 1e6, strerror(-rr), c->backup_dir);
                return 0;
        }
        task_result_set(result, RUN_SUCCESS, "Sauvegarde %s créée (%.1f Mo, intégrité ok) ; %u conservée(s), %u supprimée(s)",
                        name, st.st_size / 1e6, kept, deleted);
        return 0;
}
