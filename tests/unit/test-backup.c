/* SPDX-License-Identifier: MIT */
/* test-backup.c — the Backup SQL task through the runner, as the units run it:
 * file name, mode, integrity, stats and scheduler_logs row; retention among foreign files;
 * disk full; SIGKILL mid-copy; bad settings; verify; restore and its lock; a concurrent writer;
 * the image copy of a WAL source (frames pending behind an old reader, garbage or a cut inside
 * the WAL, SIGKILL at several points) and the backup API for a rollback-journal source.
 * With TEST_DATABASE_URL (or SBX_PG_URL inside tests/sandbox.sh), also the export of a
 * PostgreSQL store into the same SQLite format. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "backup.h"
#include "restore.h"
#include "config.h"
#include "db.h"
#include "migrate.h"
#include "runner.h"
#include "task-run.h"
#include "store.h"
#include "tasks.h"
#include "test-pg.h"
#include "test-env.h"
#include "test.h"
#include "timeutil.h"

#define MIB (1024 * 1024)

static char *tmp_root;
static unsigned counter;

/* One test's world: its own state directory, hence store, locks and backups. */
typedef struct Env {
        Config config;
        char *state_home;
        char *source;    /* env_init_source(): the SQLite store under test, removed by env_done() */
        Db *writer;      /* env_init_wal_source(): keeps the source's WAL (closed by env_done()) */
        sqlite3 *reader; /* env_init_wal_source(): holds an old snapshot (released by env_done()) */
} Env;

static void env_clear_settings(void) {
        static const char *const clear[] = { "STATE_DIRECTORY", "DATABASE_URL", "CREDENTIALS_DIRECTORY", "BACKUP_DIR",
                                             "BACKUP_SQLITE_PATH", "BACKUP_KEEP", "INVOCATION_ID" };
        test_unsetenv_all(clear, ELEMENTSOF(clear));
}

/* Settings are "NAME=value" strings, applied to the environment before config_load(). */
static void env_init_settings(Env *e, const char *const *settings) {
        *e = (Env) {};
        env_clear_settings();
        if (asprintf(&e->state_home, "%s/state-%u", tmp_root, ++counter) < 0)
                abort();
        setenv("XDG_STATE_HOME", e->state_home, 1);
        test_setenv_settings(settings);
        int r = config_load(&e->config, BUS_USER);
        ASSERT_OKF(r, "config_load: %s", e->config.error);
}

/* An SQLite store unless the settings say otherwise. */
static void env_init_any(Env *e, const char *const *settings) {
        env_init_settings(e, settings);
}

static void env_init(Env *e, const char *const *settings) {
        env_init_settings(e, settings);
        ASSERT_NULL(e->config.database_url);
}

static void release_snapshot(sqlite3 **r);

static void env_done(Env *e) {
        if (e->reader)
                release_snapshot(&e->reader);
        db_close(e->writer);
        if (e->source)
                unlink(e->source);
        free(e->source);
        config_clear(&e->config);
        test_rm_rf(e->state_home);
        free(e->state_home);
        env_clear_settings();
}

/* A store of the test's own at <tmp>/<stem>-<n>.sqlite (BACKUP_SQLITE_PATH), not created yet. */
static const char *env_init_source(Env *e, const char *stem) {
        _cleanup_free_ char *source = xasprintf("%s/%s-%u.sqlite", tmp_root, stem, counter + 1);
        _cleanup_free_ char *setting = xasprintf("BACKUP_SQLITE_PATH=%s", source);
        env_init(e, (const char *const[]) { setting, NULL });
        e->source = TAKE_PTR(source);
        return e->source;
}

/* Grows the store by about mib MiB of incompressible rows in a table of its own. */
static void fill_store(Db *db, unsigned mib) {
        exec_sql(db, "CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
        _cleanup_free_ char *sql = xasprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %u) "
                                             "INSERT INTO filler (data) SELECT randomblob(4000) FROM n",
                                             mib * 256);
        exec_sql(db, sql);
}

static int run_backup(const Env *e) {
        RunOptions opts = {};
        fflush(NULL);
        return task_run(&e->config, task_get(TASK_BACKUP), &opts);
}

/* The newest backup run's row. */
static void last_run(const Env *e, RunRow *row) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        run_row_clear(row);
        int r = store_run_last(db, "backup", NULL, NULL, row);
        ASSERT_OKF(r, "%s", db_error(db));
        ASSERT_EQ_INT(r, 1);
}

typedef struct Listing {
        char *names[64];
        size_t n;
} Listing;

static void listing_free(Listing *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->names[i]);
        l->n = 0;
}

/* Sorted names in dir; missing dir = empty. */
static void list_dir(const char *dir, Listing *l) {
        listing_free(l);
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                if (!streq(ents[i]->d_name, ".") && !streq(ents[i]->d_name, "..")) {
                        ASSERT(l->n < ELEMENTSOF(l->names));
                        l->names[l->n++] = xstrdup(ents[i]->d_name);
                }
                free(ents[i]);
        }
        free(ents);
}

/* The path of the one file in the backup directory, l its listing. */
static char *sole_backup(const Env *e, Listing *l) {
        list_dir(e->config.backup_dir, l);
        ASSERTF(l->n == 1, "%zu files in %s (first: %s)", l->n, e->config.backup_dir, l->n ? l->names[0] : "-");
        return xasprintf("%s/%s", e->config.backup_dir, l->names[0]);
}

static size_t count_matching(const Listing *l, bool (*pred)(const char *)) {
        size_t k = 0;
        for (size_t i = 0; i < l->n; i++)
                k += pred(l->names[i]);
        return k;
}

static bool is_temporary(const char *name) {
        return strncmp(name, ".db_backup.", 11) == 0;
}

static bool has(const Listing *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->names[i], name))
                        return true;
        return false;
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        ASSERTF(f, "%s: %s", path, strerror(errno));
        fputs(content, f);
        ASSERT(fclose(f) == 0);
}

static off_t file_size(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -1;
        return st.st_size;
}

static cJSON *parse_stats(const RunRow *row) {
        cJSON *j = cJSON_Parse(row->stats);
        ASSERTF(cJSON_IsObject(j), "stats: %s", row->stats ? row->stats : "NULL");
        return j;
}

static void assert_verified(const char *path) {
        char reason[512] = "";
        int r = backup_verify(path, reason, sizeof reason);
        ASSERT_OKF(r, "backup_verify %s: %s", path, reason);
}

/* ---- tests ---- */

TEST(name_pattern) {
        ASSERT(backup_name_valid("db_backup_20261124_030000.sqlite"));
        ASSERT(backup_name_valid("db_backup_20260308_235959.sqlite"));
        static const char *const bad[] = {
                "db_backup_foo.sqlite", "db_backup_20260101_000000.sqlite.bak", "xdb_backup_20260101_000000.sqlite",
                "db_backup_20260101-000000.sqlite", "db_backup_2026010_0000000.sqlite", "db_backup_20260101_000000.db",
                "db_backup_20260101_00000a.sqlite", "db_backup_20260101_000000.sqlite-wal", ".db_backup.123.tmp",
                "db_backup_20260101_000000", "", "notes.txt", "DB_BACKUP_20260101_000000.sqlite",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERTF(!backup_name_valid(bad[i]), "\"%s\" accepted", bad[i]);
}

TEST(backup_creates_verified_file) {
        Env e;
        env_init(&e, NULL);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                exec_sql(db, "INSERT INTO gazelle_users (external_id, first_name, last_name, synced_at) VALUES "
                             "('usr_1', 'Nicolas', 'Lévesque', '2026-11-24T08:00:00.000000Z'), "
                             "('usr_2', 'Jean-Philippe', 'Côté', '2026-11-24T08:00:00.000000Z')");
        }
        usec_t before = now_realtime();
        _cleanup_free_ char *user = getenv("USER") ? xstrdup(getenv("USER")) : NULL;
        ASSERT_OK(setenv("USER", "mallory", 1));
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        ASSERT_OK(user ? setenv("USER", user, 1) : unsetenv("USER"));
        usec_t after = now_realtime();

        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files in %s (first: %s)", l.n, e.config.backup_dir, l.n ? l.names[0] : "-");
        _cleanup_free_ char *name = xstrdup(l.names[0]);
        ASSERTF(backup_name_valid(name), "%s", name);

        /* Named after the Montréal wall clock of the run. */
        char lo[64], hi[64];
        time_t s0 = (time_t) (before / USEC_PER_SEC), s1 = (time_t) (after / USEC_PER_SEC) + 1;
        struct tm tm;
        strftime(lo, sizeof lo, "db_backup_%Y%m%d_%H%M%S.sqlite", localtime_r(&s0, &tm));
        strftime(hi, sizeof hi, "db_backup_%Y%m%d_%H%M%S.sqlite", localtime_r(&s1, &tm));
        ASSERTF(strcmp(name, lo) >= 0 && strcmp(name, hi) <= 0, "%s not in [%s, %s]", name, lo, hi);

        _cleanup_free_ char *path = xasprintf("%s/%s", e.config.backup_dir, name);
        struct stat st;
        ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
        ASSERTF((st.st_mode & 07777) == 0600, "mode %o", st.st_mode & 07777);
        ASSERT(S_ISREG(st.st_mode));
        assert_verified(path);
        /* One self-contained file: not marked WAL (which would make every reader leave -wal and
         * -shm files next to it), and reading it leaves nothing behind. */
        {
                sqlite3 *ro = NULL;
                ASSERT_EQ_INT(sqlite3_open_v2(path, &ro, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                sqlite3_stmt *mode = NULL;
                ASSERT_EQ_INT(sqlite3_prepare_v2(ro, "PRAGMA journal_mode", -1, &mode, NULL), SQLITE_OK);
                ASSERT_EQ_INT(sqlite3_step(mode), SQLITE_ROW);
                ASSERT_STREQ((const char *) sqlite3_column_text(mode, 0), "delete");
                sqlite3_finalize(mode);
                sqlite3_close(ro);
        }
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files after reading the backup (second: %s)", l.n, l.n > 1 ? l.names[1] : "-");

        /* The copy holds the data. */
        {
                _cleanup_(db_closep) Db *copy = NULL;
                ASSERT_OK(db_open_sqlite(path, &copy));
                ASSERT_EQ_INT(query_int(copy, "SELECT count(*) FROM gazelle_users"), 2);
                _cleanup_free_ char *ln = NULL;
                ASSERT_EQ_INT(db_query_text(copy, "SELECT last_name FROM gazelle_users WHERE external_id = 'usr_1'",
                                            DB_NO_PARAMS, &ln), 1);
                ASSERT_STREQ(ln, "Lévesque");
        }

        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "success");
        ASSERT_STREQ(row.triggered_by, "cli");
        /* The account that ran it, from the real uid, whatever $USER claims. */
        ASSERT(row.has_caller_uid);
        ASSERT_EQ_INT(row.caller_uid, getuid());
        _cleanup_free_ char *me = user_name_of(getuid());
        ASSERT_STREQ(row.caller_name, me);
        ASSERT_STREQ(row.triggered_by_user, "mallory");
        ASSERT_STREQ(row.task_label, "Backup SQL");
        ASSERT_CONTAINS(row.message, name);
        ASSERT(row.completed_at >= row.started_at);
        ASSERT(row.duration_seconds >= 0);
        cJSON *stats = parse_stats(&row);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(stats, "file")), name);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(stats, "bytes")), st.st_size);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(stats, "integrity")), "ok");
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(stats, "kept")), 1);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(stats, "deleted")), 0);
        cJSON_Delete(stats);
        run_row_clear(&row);

        /* Nothing else left behind: no temporary, no -wal/-shm next to the backup. */
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files after verify (second: %s)", l.n, l.n > 1 ? l.names[1] : "-");

        /* A second run in the same second gets its own name. */
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(l.n, 2);
        ASSERT(backup_name_valid(l.names[0]) && backup_name_valid(l.names[1]));
        listing_free(&l);

        /* --dry-run writes nothing. */
        RunOptions dry = { .dry_run = true };
        ASSERT_EQ_INT(task_run(&e.config, task_get(TASK_BACKUP), &dry), EXIT_TASK_OK);
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(l.n, 2);
        listing_free(&l);
        env_done(&e);
}

TEST(retention) {
        Env e;
        env_init(&e, (const char *const[]) { "BACKUP_KEEP=3", NULL });
        ASSERT_EQ_INT(e.config.backup_keep, 3);
        ASSERT_OK(mkdir_p(e.config.backup_dir, 0700));
        static const char *const old[] = {
                "db_backup_20260101_000000.sqlite", "db_backup_20260102_000000.sqlite",
                "db_backup_20260103_000000.sqlite", "db_backup_20260104_000000.sqlite",
        };
        static const char *const foreign[] = {
                "db_backup_foo.sqlite", "notes.txt", "db_backup_20260101_000000.sqlite.bak",
                "xdb_backup_20260101_000000.sqlite", "db_backup_20250101_000000.sqlite-wal",
        };
        for (size_t i = 0; i < ELEMENTSOF(old); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", e.config.backup_dir, old[i]);
                write_file(p, "ancienne sauvegarde\n");
        }
        for (size_t i = 0; i < ELEMENTSOF(foreign); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", e.config.backup_dir, foreign[i]);
                write_file(p, "pas à nous\n");
        }

        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);

        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        /* The new one and the two newest old ones stay; the two oldest go. */
        ASSERT(!has(&l, old[0]));
        ASSERT(!has(&l, old[1]));
        ASSERT(has(&l, old[2]));
        ASSERT(has(&l, old[3]));
        for (size_t i = 0; i < ELEMENTSOF(foreign); i++)
                ASSERTF(has(&l, foreign[i]), "%s was deleted", foreign[i]);
        size_t valid = 0;
        _cleanup_free_ char *newest = NULL;
        for (size_t i = 0; i < l.n; i++)
                if (backup_name_valid(l.names[i])) {
                        valid++;
                        free(newest);
                        newest = xstrdup(l.names[i]);
                }
        ASSERT_EQ_INT(valid, 3);
        ASSERT(strcmp(newest, old[3]) > 0);
        ASSERT_EQ_INT(l.n, 3 + ELEMENTSOF(foreign));
        for (size_t i = 0; i < ELEMENTSOF(foreign); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", e.config.backup_dir, foreign[i]);
                _cleanup_free_ char *content = NULL;
                ASSERT_OK(read_file_bounded(p, 1024, &content));
                ASSERT_STREQ(content, "pas à nous\n");
        }

        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "success");
        cJSON *stats = parse_stats(&row);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(stats, "kept")), 3);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(stats, "deleted")), 2);
        cJSON_Delete(stats);
        run_row_clear(&row);

        /* backup_rotate on its own: keep 1, then keep more than there are. */
        unsigned kept = 99, deleted = 99;
        ASSERT_OK(backup_rotate(e.config.backup_dir, 1, &kept, &deleted));
        ASSERT_EQ_INT(kept, 1);
        ASSERT_EQ_INT(deleted, 2);
        list_dir(e.config.backup_dir, &l);
        ASSERT(has(&l, newest));
        ASSERT_EQ_INT(l.n, 1 + ELEMENTSOF(foreign));
        ASSERT_OK(backup_rotate(e.config.backup_dir, 10, &kept, &deleted));
        ASSERT_EQ_INT(kept, 1);
        ASSERT_EQ_INT(deleted, 0);
        listing_free(&l);
        env_done(&e);
}

/* Runs the backup in a child with RLIMIT_FSIZE = limit bytes; returns its exit code. */
static int run_backup_with_fsize_limit(const Env *e, rlim_t limit) {
        pid_t pid = test_fork();
        if (pid == 0) {
                struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };
                if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                        _exit(100);
                _exit(run_backup(e));
        }
        int status;
        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERTF(WIFEXITED(status), "backup child died: status 0x%x", status);
        return WEXITSTATUS(status);
}

TEST(disk_full) {
        Env e;
        env_init(&e, NULL);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                fill_store(db, 4);
        }
        /* An earlier backup, made while there was room. */
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        Listing l = {};
        _cleanup_free_ char *earlier = sole_backup(&e, &l);
        off_t earlier_size = file_size(earlier);
        ASSERT(earlier_size > 4 * MIB);
        sleep(1); /* a new name for the failing run, so it cannot touch the earlier file */

        /* 1 MiB file size limit: the store is 4 MiB, the copy cannot fit. */
        ASSERT_EQ_INT(run_backup_with_fsize_limit(&e, 1 * MIB), EXIT_TASK_FAILED);

        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "error");
        ASSERT_CONTAINS(row.message, "disque plein");
        ASSERT_CONTAINS(row.message, "précédentes sont intactes");
        ASSERT(row.completed_at > 0);
        run_row_clear(&row);

        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files after the failure (second: %s)", l.n, l.n > 1 ? l.names[1] : "-");
        ASSERT_EQ_INT(count_matching(&l, is_temporary), 0);
        ASSERT_EQ_INT(file_size(earlier), earlier_size);
        assert_verified(earlier);

        /* Room again: the next run succeeds. */
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 2, "%zu files: %s %s %s", l.n, l.names[0], l.n > 1 ? l.names[1] : "", l.n > 2 ? l.names[2] : "");
        listing_free(&l);
        env_done(&e);
}

/* A SQLite file in rollback-journal mode (the backup pauses between steps for such sources,
 * which makes the copy long enough to be killed half-way, deterministically). */
static void make_source(const char *path, unsigned mib) {
        _cleanup_(db_closep) Db *db = NULL;
        ASSERT_OK(db_open_sqlite(path, &db));
        exec_sql(db, "PRAGMA journal_mode=DELETE");
        ASSERT_OK(migrate_apply(db));
        fill_store(db, mib);
}

TEST(sigkill_mid_backup) {
        Env e;
        const char *source = env_init_source(&e, "source");
        make_source(source, 48);
        ASSERT_OK(mkdir_p(e.config.backup_dir, 0700));

        pid_t pid = test_fork();
        if (pid == 0)
                _exit(run_backup(&e));
        _cleanup_free_ char *tmp = xasprintf("%s/.db_backup.%d.tmp", e.config.backup_dir, (int) pid);
        /* Wait until the copy is under way (some MiB written), then kill it. */
        bool seen = false;
        for (int i = 0; i < 30000 && !seen; i++) {
                if (file_size(tmp) >= 2 * MIB)
                        seen = true;
                else
                        usleep(1000);
                int status;
                ASSERTF(waitpid(pid, &status, WNOHANG) == 0, "the backup ended before it could be killed (0x%x)",
                        status);
        }
        ASSERTF(seen, "%s never grew", tmp);
        ASSERT_OK(kill(pid, SIGKILL) < 0 ? -errno : 0);
        int status;
        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        /* Killed: the temporary stays, no final file appeared, the row says running. */
        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(l.n, 1);
        ASSERT(is_temporary(l.names[0]));
        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "running");
        ASSERT_EQ_INT(row.pid, pid);
        _cleanup_free_ char *killed_id = xstrdup(row.id);

        /* What SQLite may leave beside the copy if the kill lands during its integrity check. */
        static const char *const companions[] = { "-wal", "-shm", "-journal" };
        for (size_t i = 0; i < ELEMENTSOF(companions); i++) {
                _cleanup_free_ char *p = xasprintf("%s%s", tmp, companions[i]);
                write_file(p, "");
        }
        /* Not ours: kept. */
        _cleanup_free_ char *other = xasprintf("%s/.db_backup.notes", e.config.backup_dir);
        write_file(other, "");

        /* The next run cleans up after it and succeeds. */
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        ASSERT_OK(unlink(other) < 0 ? -errno : 0);
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files (first: %s)", l.n, l.n ? l.names[0] : "-");
        ASSERT(backup_name_valid(l.names[0]));
        _cleanup_free_ char *final = xasprintf("%s/%s", e.config.backup_dir, l.names[0]);
        assert_verified(final);
        ASSERT(file_size(final) > 48 * MIB);

        /* … and the killed run is no longer "running". */
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                _cleanup_free_ char *status_text = NULL;
                ASSERT_EQ_INT(db_query_text(db, "SELECT status FROM scheduler_logs WHERE id = $1",
                                            DB_PARAMS(DBV_TEXT_OR_NULL(killed_id)), &status_text), 1);
                ASSERT_STREQ(status_text, "error");
        }
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "success");
        run_row_clear(&row);
        listing_free(&l);
        env_done(&e);
}

TEST(missing_source) {
        _cleanup_free_ char *source = xasprintf("%s/n-existe-pas/gazelle.sqlite", tmp_root);
        _cleanup_free_ char *setting = xasprintf("BACKUP_SQLITE_PATH=%s", source);
        Env e;
        env_init(&e, (const char *const[]) { setting, NULL });
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_FAILED);
        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "error");
        ASSERT_CONTAINS(row.message, source);
        ASSERT_CONTAINS(row.message, "introuvable");
        ASSERT_CONTAINS(row.message, "BACKUP_SQLITE_PATH");
        run_row_clear(&row);
        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(l.n, 0);
        ASSERT(access(source, F_OK) < 0); /* not created by the attempt */
        env_done(&e);
}

TEST(unwritable_backup_dir) {
        /* Tests run as root: permissions do not stop root, a path under a regular file does. */
        Env e;
        env_init(&e, (const char *const[]) { "BACKUP_DIR=/etc/passwd/sauvegardes", NULL });
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_FAILED);
        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "error");
        ASSERT_CONTAINS(row.message, "/etc/passwd/sauvegardes");
        ASSERT_CONTAINS(row.message, "BACKUP_DIR");
        run_row_clear(&row);
        env_done(&e);
}

TEST(verify) {
        Env e;
        env_init(&e, NULL);
        char reason[512];
        _cleanup_free_ char *dir = xasprintf("%s/verify-%u", tmp_root, counter);
        ASSERT_OK(mkdir_p(dir, 0700));

        /* Not SQLite at all. */
        _cleanup_free_ char *text = xasprintf("%s/notes.sqlite", dir);
        write_file(text, "Ceci n'est pas une base de données.\n");
        reason[0] = 0;
        ASSERT(backup_verify(text, reason, sizeof reason) < 0);
        ASSERT(reason[0]);

        /* Missing. */
        _cleanup_free_ char *missing = xasprintf("%s/absent.sqlite", dir);
        reason[0] = 0;
        ASSERT(backup_verify(missing, reason, sizeof reason) < 0);
        ASSERT(reason[0]);
        ASSERT(access(missing, F_OK) < 0);

        /* SQLite, but not ours. */
        _cleanup_free_ char *foreign = xasprintf("%s/foreign.sqlite", dir);
        {
                _cleanup_(db_closep) Db *db = NULL;
                ASSERT_OK(db_open_sqlite(foreign, &db));
                exec_sql(db, "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom TEXT)");
        }
        reason[0] = 0;
        ASSERT_ERRNO(backup_verify(foreign, reason, sizeof reason), -EBADMSG);
        ASSERT_CONTAINS(reason, "schema_migrations");

        /* Ours, from a newer version of the program. */
        _cleanup_free_ char *newer = xasprintf("%s/newer.sqlite", dir);
        {
                _cleanup_(db_closep) Db *db = NULL;
                ASSERT_OK(db_open_sqlite(newer, &db));
                ASSERT_OK(migrate_apply(db));
                exec_sql(db, "INSERT INTO schema_migrations (version, name, applied_at) "
                             "VALUES (999, '999_future', '2030-01-01T00:00:00.000000Z')");
        }
        reason[0] = 0;
        ASSERT_ERRNO(backup_verify(newer, reason, sizeof reason), -EPROTONOSUPPORT);
        ASSERT_CONTAINS(reason, "999");

        /* A real backup passes; the same file with a damaged page does not. */
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                fill_store(db, 1);
        }
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        Listing l = {};
        _cleanup_free_ char *good = sole_backup(&e, &l);
        assert_verified(good);
        {
                int fd = open(good, O_WRONLY | O_CLOEXEC);
                ASSERT(fd >= 0);
                char junk[4096];
                memset(junk, 0xA5, sizeof junk);
                /* Page 2 onwards: b-tree pages of the schema and the tables. */
                ASSERT_EQ_INT(pwrite(fd, junk, sizeof junk, 4096), (ssize_t) sizeof junk);
                ASSERT_EQ_INT(pwrite(fd, junk, sizeof junk, 3 * 4096), (ssize_t) sizeof junk);
                close(fd);
        }
        reason[0] = 0;
        ASSERT(backup_verify(good, reason, sizeof reason) < 0);
        ASSERT(reason[0]);
        listing_free(&l);
        test_rm_rf(dir);
        env_done(&e);
}

static int64_t count_users(const Env *e) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        return query_int(db, "SELECT count(*) FROM gazelle_users");
}

TEST(restore) {
        Env e;
        env_init(&e, NULL);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                exec_sql(db, "INSERT INTO gazelle_users (external_id, first_name, synced_at) VALUES "
                             "('usr_1', 'Nick', '2026-11-24T08:00:00.000000Z')");
        }
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        Listing l = {};
        _cleanup_free_ char *path = sole_backup(&e, &l);

        /* A change after the backup… */
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                exec_sql(db, "INSERT INTO gazelle_users (external_id, first_name, synced_at) VALUES "
                             "('usr_2', 'Allan', '2026-11-24T09:00:00.000000Z')");
                exec_sql(db, "UPDATE gazelle_users SET first_name = 'Nicolas' WHERE external_id = 'usr_1'");
        }
        ASSERT_EQ_INT(count_users(&e), 2);

        /* …refused while a task holds its lock: nothing changes. */
        {
                _cleanup_free_ char *lock = xasprintf("%s/locks/backup.lock", e.config.state_dir);
                ASSERT_OK(mkdir_p(e.config.state_dir, 0700));
                _cleanup_free_ char *locks = xasprintf("%s/locks", e.config.state_dir);
                ASSERT_OK(mkdir_p(locks, 0700));
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                ASSERT(fd >= 0);
                ASSERT_OK(flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0);
                ASSERT_EQ_INT(backup_restore(&e.config, path, false), EXIT_TASK_FAILED);
                ASSERT_EQ_INT(count_users(&e), 2);
                /* The lock also keeps a backup run out. */
                ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_FAILED);
        }

        /* …and gone once restored. */
        ASSERT_EQ_INT(backup_restore(&e.config, path, false), EXIT_TASK_OK);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM gazelle_users"), 1);
                _cleanup_free_ char *name = NULL;
                ASSERT_EQ_INT(db_query_text(db, "SELECT first_name FROM gazelle_users WHERE external_id = 'usr_1'",
                                            DB_NO_PARAMS, &name), 1);
                ASSERT_STREQ(name, "Nick");
                _cleanup_free_ char *integrity = NULL;
                ASSERT_EQ_INT(db_query_text(db, "PRAGMA integrity_check", DB_NO_PARAMS, &integrity), 1);
                ASSERT_STREQ(integrity, "ok");
                _cleanup_free_ char *mode = NULL;
                ASSERT_EQ_INT(db_query_text(db, "PRAGMA journal_mode", DB_NO_PARAMS, &mode), 1);
                ASSERT_STREQ(mode, "wal");
        }
        /* The backup itself is untouched and the store works on. */
        assert_verified(path);
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);

        /* A file that fails verification is never restored. */
        _cleanup_free_ char *bogus = xasprintf("%s/bogus.sqlite", e.state_home);
        write_file(bogus, "pas une sauvegarde\n");
        ASSERT_EQ_INT(backup_restore(&e.config, bogus, false), EXIT_TASK_FAILED);
        ASSERT_EQ_INT(count_users(&e), 1);
        listing_free(&l);
        env_done(&e);
}

/* Inserts pairs of rows, one transaction per pair, until SIGTERM; exit 0 if no write failed. */
static volatile sig_atomic_t writer_stop;
static void on_writer_stop(int sig) {
        writer_stop = 1;
}

static _Noreturn void writer_loop(const Env *e, int ready_fd) {
        signal(SIGTERM, on_writer_stop);
        Db *db = NULL;
        if (store_open(&e->config, &db) < 0)
                _exit(2);
        unsigned long n = 0, failures = 0;
        while (!writer_stop) {
                char a[32], b[32];
                snprintf(a, sizeof a, "w%lu-a", n);
                snprintf(b, sizeof b, "w%lu-b", n);
                int r = db_begin(db);
                if (r >= 0)
                        r = db_exec(db, "INSERT INTO gazelle_users (external_id, first_name, synced_at) "
                                        "VALUES ($1, 'écrivain', '2026-11-24T08:00:00.000000Z'), "
                                        "($2, 'écrivain', '2026-11-24T08:00:00.000000Z')",
                                    DB_PARAMS(((DbValue) { .type = DBV_TEXT, .s = a }),
                                              ((DbValue) { .type = DBV_TEXT, .s = b })));
                if (r >= 0)
                        r = db_commit(db);
                else
                        (void) db_rollback(db);
                if (r < 0) {
                        fprintf(stderr, "writer: %s\n", db_error(db));
                        failures++;
                }
                if (++n == 50 && ready_fd >= 0) {
                        (void) !write(ready_fd, "r", 1);
                        close(ready_fd);
                        ready_fd = -1;
                }
        }
        db_close(db);
        _exit(failures ? 1 : 0);
}

TEST(concurrent_writer) {
        Env e;
        env_init(&e, NULL);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                fill_store(db, 32);
        }
        int ready[2];
        ASSERT_OK(pipe(ready) < 0 ? -errno : 0);
        pid_t writer = test_fork();
        if (writer == 0) {
                close(ready[0]);
                writer_loop(&e, ready[1]);
        }
        close(ready[1]);
        char c;
        ASSERT_EQ_INT(read(ready[0], &c, 1), 1); /* the writer is writing */
        close(ready[0]);
        int64_t rows_before = count_users(&e);

        int rc = run_backup(&e);
        int64_t rows_after = count_users(&e);

        ASSERT_OK(kill(writer, SIGTERM) < 0 ? -errno : 0);
        int status;
        ASSERT_EQ_INT(waitpid(writer, &status, 0), writer);
        ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status 0x%x", status);
        ASSERT_EQ_INT(rc, EXIT_TASK_OK);
        /* The writer was not blocked while the backup ran. */
        ASSERTF(rows_after > rows_before, "writer stalled: %lld rows before, %lld after", (long long) rows_before,
                (long long) rows_after);

        Listing l = {};
        _cleanup_free_ char *path = sole_backup(&e, &l);
        assert_verified(path);
        /* One snapshot: every transaction is in whole or not at all (pairs), and the copy has
         * the rows committed before it started. */
        {
                _cleanup_(db_closep) Db *copy = NULL;
                ASSERT_OK(db_open_sqlite(path, &copy));
                int64_t n = query_int(copy, "SELECT count(*) FROM gazelle_users");
                ASSERTF(n % 2 == 0, "%lld rows: a transaction was cut in half", (long long) n);
                ASSERT(n >= rows_before);
                ASSERT_EQ_INT(query_int(copy, "SELECT count(*) FROM gazelle_users WHERE external_id LIKE '%-a'"),
                              n / 2);
                ASSERT_EQ_INT(query_int(copy, "SELECT count(*) FROM filler"), 32 * 256);
        }
        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "success");
        run_row_clear(&row);
        listing_free(&l);
        env_done(&e);
}

/* ---- the image copy of a WAL source ---- */

static void assert_copy_text(sqlite3 *copy, const char *sql, const char *expected);

static int64_t wal_size(const char *path) {
        _cleanup_free_ char *wal = xasprintf("%s-wal", path);
        return file_size(wal);
}

/* A store of ours in WAL mode at path, mib MiB of filler, kept open by the returned writer so
 * its WAL stays (the last connection to close would checkpoint and remove it). */
static Db *make_wal_source(const char *path, unsigned mib) {
        Db *db = NULL;
        ASSERT_OK(db_open_sqlite(path, &db));
        _cleanup_free_ char *mode = NULL;
        ASSERT_EQ_INT(db_query_text(db, "PRAGMA journal_mode", DB_NO_PARAMS, &mode), 1);
        ASSERT_STREQ(mode, "wal");
        ASSERT_OK(migrate_apply(db));
        fill_store(db, mib);
        /* An empty WAL file: from here on it holds exactly the frames committed since. */
        exec_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        ASSERT_EQ_INT(wal_size(path), 0);
        return db;
}

/* A reader holding an old snapshot: checkpoints stop at it, so later commits stay in the WAL. */
static sqlite3 *hold_old_snapshot(const char *path) {
        sqlite3 *r = NULL;
        ASSERT_EQ_INT(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ_INT(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM filler", NULL, NULL, NULL), SQLITE_OK);
        return r;
}

static void release_snapshot(sqlite3 **r) {
        ASSERT_EQ_INT(sqlite3_exec(*r, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(TAKE_PTR(*r));
}

/* A WAL source of mib MiB (make_wal_source) with an old snapshot held on it (hold_old_snapshot),
 * in e->writer and e->reader. */
static const char *env_init_wal_source(Env *e, const char *stem, unsigned mib) {
        const char *source = env_init_source(e, stem);
        e->writer = make_wal_source(source, mib);
        e->reader = hold_old_snapshot(source);
        return source;
}

/* Rewrites pages already in the file, adds new ones, removes some: the snapshot's version of
 * many pages is in WAL frames only. */
static void change_source(Db *db, unsigned round) {
        _cleanup_free_ char *sql = xasprintf(
                "BEGIN;"
                "UPDATE filler SET data = randomblob(4000) WHERE id %% 7 = %u;"
                "DELETE FROM filler WHERE id %% 11 = %u;"
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
                "INSERT INTO filler (data) SELECT randomblob(3000) FROM n;"
                "INSERT INTO gazelle_users (external_id, first_name, synced_at) VALUES "
                "('round-%u', 'Hélène', '2026-11-24T08:00:00.000000Z');"
                "COMMIT",
                round % 7, round % 11, round);
        exec_sql(db, sql);
}

/* The newest backup file, checked: verified, rollback journal, and the same rows as source. */
static void assert_backup_equals(const Env *e, const char *source, const char *method) {
        Listing l = {};
        list_dir(e->config.backup_dir, &l);
        ASSERT(l.n >= 1);
        _cleanup_free_ char *path = xasprintf("%s/%s", e->config.backup_dir, l.names[l.n - 1]);
        listing_free(&l);
        assert_verified(path);

        sqlite3 *copy = NULL;
        ASSERT_EQ_INT(sqlite3_open_v2(path, &copy, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_copy_text(copy, "PRAGMA journal_mode", "delete");
        _cleanup_free_ char *attach = xasprintf("ATTACH 'file:%s?mode=ro' AS src", source);
        ASSERT_EQ_INT(sqlite3_exec(copy, attach, NULL, NULL, NULL), SQLITE_OK);
        assert_copy_text(copy,
                         "SELECT (SELECT count(*) FROM filler) = (SELECT count(*) FROM src.filler) AND "
                         "(SELECT count(*) FROM filler) = (SELECT count(*) FROM filler a JOIN src.filler b "
                         "USING (id) WHERE a.data = b.data)",
                         "1");
        assert_copy_text(copy,
                         "SELECT group_concat(external_id) = (SELECT group_concat(external_id) FROM "
                         "(SELECT external_id FROM src.gazelle_users ORDER BY 1)) FROM "
                         "(SELECT external_id FROM gazelle_users ORDER BY 1)",
                         "1");
        sqlite3_close(copy);

        RunRow row = { .duration_seconds = -1 };
        last_run(e, &row);
        ASSERT_STREQ(row.status, "success");
        cJSON *stats = parse_stats(&row);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(stats, "method")), method);
        cJSON_Delete(stats);
        run_row_clear(&row);
}

static double last_stat(const Env *e, const char *name) {
        RunRow row = { .duration_seconds = -1 };
        last_run(e, &row);
        cJSON *stats = parse_stats(&row);
        cJSON *v = cJSON_GetObjectItem(stats, name);
        ASSERTF(cJSON_IsNumber(v), "no %s in %s", name, row.stats);
        double d = cJSON_GetNumberValue(v);
        cJSON_Delete(stats);
        run_row_clear(&row);
        return d;
}

/* The snapshot's latest pages are WAL frames the checkpoint could not copy: the image is the
 * file plus those frames, identical to what SQLite reads; the WAL source is left as it was. */
TEST(wal_frames_pending) {
        Env e;
        const char *source = env_init_wal_source(&e, "wal-source", 8);
        for (unsigned round = 1; round <= 5; round++)
                change_source(e.writer, round);
        int64_t wal_before = wal_size(source);
        ASSERT(wal_before > 1 * MIB);

        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        assert_backup_equals(&e, source, "image");
        ASSERTF(last_stat(&e, "wal_frames") > 100, "%g frames laid over", last_stat(&e, "wal_frames"));
        ASSERT(last_stat(&e, "verified_pages") > 8 * 256);

        /* The old reader still sees its snapshot; the source works on. */
        release_snapshot(&e.reader);
        change_source(e.writer, 6);
        sleep(1);
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        assert_backup_equals(&e, source, "image");
        env_done(&e);
}

/* Bytes after the snapshot's last frame (a transaction being written, a torn frame after a
 * crash) are not part of it: ignored, whatever they hold. */
TEST(wal_garbage_tail) {
        Env e;
        const char *source = env_init_wal_source(&e, "wal-tail", 4);
        for (unsigned round = 1; round <= 3; round++)
                change_source(e.writer, round);

        _cleanup_free_ char *wal = xasprintf("%s-wal", source);
        int64_t committed = wal_size(source);
        /* A whole frame of random bytes and half a frame more (a frame is 24 + 4096 bytes). */
        {
                _cleanup_close_ int fd = open(wal, O_WRONLY | O_APPEND | O_CLOEXEC);
                ASSERT(fd >= 0);
                uint8_t junk[4120 + 2000];
                for (size_t i = 0; i < sizeof junk; i++)
                        junk[i] = (uint8_t) (i * 7919 + 13);
                ASSERT_EQ_INT(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        }
        ASSERT_EQ_INT(wal_size(source), committed + 4120 + 2000);
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        assert_backup_equals(&e, source, "image");
        ASSERT(last_stat(&e, "wal_frames") > 0);

        env_done(&e);
}

/* A WAL cut short inside the snapshot (a damaged disk): nothing is published, the earlier
 * backup stays as it was. */
TEST(wal_truncated_inside_snapshot) {
        Env e;
        const char *source = env_init_wal_source(&e, "wal-cut", 4);
        change_source(e.writer, 1);
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        Listing l = {};
        _cleanup_free_ char *earlier = sole_backup(&e, &l);
        off_t earlier_size = file_size(earlier);
        sleep(1);

        change_source(e.writer, 2);
        _cleanup_free_ char *wal = xasprintf("%s-wal", source);
        ASSERT_OK(truncate(wal, wal_size(source) - 3 * 4120) < 0 ? -errno : 0);
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_FAILED);
        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "error");
        ASSERT_CONTAINS(row.message, "précédentes sont intactes");
        run_row_clear(&row);
        list_dir(e.config.backup_dir, &l);
        ASSERTF(l.n == 1, "%zu files after the failure (second: %s)", l.n, l.n > 1 ? l.names[1] : "-");
        ASSERT_EQ_INT(file_size(earlier), earlier_size);
        assert_verified(earlier);
        listing_free(&l);

        sqlite3_close(TAKE_PTR(e.reader)); /* no COMMIT: the source is damaged on purpose */
        env_done(&e);
        unlink(wal);
}

/* Not in WAL mode: the backup API, step by step, and a full integrity check. */
TEST(non_wal_fallback) {
        Env e;
        const char *source = env_init_source(&e, "rollback");
        make_source(source, 4);
        {
                _cleanup_(db_closep) Db *db = NULL;
                ASSERT_OK(db_open_sqlite(source, &db));
                exec_sql(db, "PRAGMA journal_mode=DELETE");
                change_source(db, 1);
        }
        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        assert_backup_equals(&e, source, "backup-api");
        _cleanup_free_ char *journal = xasprintf("%s-wal", source);
        ASSERT(access(journal, F_OK) < 0); /* still not WAL */
        env_done(&e);
}

/* SIGKILL at several points of an image copy: never a published partial file, and the next
 * run cleans up and succeeds. */
TEST(sigkill_image_copy) {
        Env e;
        const char *source = env_init_wal_source(&e, "wal-kill", 64);
        change_source(e.writer, 1);
        ASSERT_OK(mkdir_p(e.config.backup_dir, 0700));

        static const useconds_t delays[] = { 0, 1000, 5000, 20000, 60000 };
        unsigned killed = 0;
        for (size_t k = 0; k < ELEMENTSOF(delays); k++) {
                pid_t pid = test_fork();
                if (pid == 0)
                        _exit(run_backup(&e));
                _cleanup_free_ char *tmp = xasprintf("%s/.db_backup.%d.tmp", e.config.backup_dir, (int) pid);
                int status;
                bool ended = false;
                for (int i = 0; i < 100000 && access(tmp, F_OK) < 0 && !ended; i++) {
                        ended = waitpid(pid, &status, WNOHANG) == pid;
                        usleep(50);
                }
                usleep(delays[k]);
                if (!ended) {
                        ASSERT_OK(kill(pid, SIGKILL) < 0 ? -errno : 0);
                        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
                }
                Listing l = {};
                list_dir(e.config.backup_dir, &l);
                if (WIFSIGNALED(status)) {
                        killed++;
                        for (size_t i = 0; i < l.n; i++)
                                if (backup_name_valid(l.names[i])) {
                                        _cleanup_free_ char *p = xasprintf("%s/%s", e.config.backup_dir, l.names[i]);
                                        assert_verified(p); /* published only once complete */
                                }
                } else
                        ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
                listing_free(&l);
        }
        ASSERTF(killed >= 2, "only %u of %zu runs were killed mid-way", killed, ELEMENTSOF(delays));

        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        assert_backup_equals(&e, source, "image");
        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(count_matching(&l, is_temporary), 0);
        listing_free(&l);
        env_done(&e);
}

static char *pg_admin_url;

static void assert_copy_text(sqlite3 *copy, const char *sql, const char *expected) {
        sqlite3_stmt *st = NULL;
        ASSERTF(sqlite3_prepare_v2(copy, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(copy));
        ASSERTF(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
        const char *v = (const char *) sqlite3_column_text(st, 0);
        ASSERTF(expected ? v && streq(v, expected) : !v, "%s: \"%s\", expected \"%s\"", sql, v ? v : "NULL",
                expected ? expected : "NULL");
        sqlite3_finalize(st);
}

/* A PostgreSQL store is exported into a SQLite file with the embedded schema, values in the
 * SQLite store's representation, so that one restore path serves both. */
TEST(postgresql_export) {
        char *dbname = test_pg_create_database(pg_admin_url, "backup");
        _cleanup_free_ char *url = test_pg_conninfo_with_dbname(pg_admin_url, dbname);
        _cleanup_free_ char *setting = xasprintf("DATABASE_URL=%s", url);
        Env e;
        env_init_any(&e, (const char *const[]) { setting, NULL });
        ASSERT(e.config.database_url);
        {
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                ASSERT_EQ_INT(db_backend(db), DB_POSTGRESQL);
                exec_sql(db,
                         "INSERT INTO gazelle_contacts (external_id, client_external_id, is_default, first_name, "
                         "last_name, wants_email, wants_phone, email, synced_at) VALUES "
                         "('con_1', 'cli_1', true, 'Hélène', 'Côté « l''aînée » 🎹', false, NULL, 'h@x.ca', "
                         "'2026-11-24 10:00:00.123456+00'), "
                         "('con_2', 'cli_1', false, NULL, NULL, true, true, NULL, '2026-11-24 10:00:00+00');"
                         "INSERT INTO gazelle_appointments (external_id, title, start_at, duration_minutes, is_all_day, "
                         "confirmed_by_client, status, synced_at, deleted_at) VALUES "
                         "('apt_1', 'Accord', '2026-11-25 14:30:00-05', 90, false, NULL, 'ACTIVE', now(), NULL);"
                         "INSERT INTO alert_ledger (appointment_external_id, target_date, technician_external_id, "
                         "state, attempts, created_at, updated_at) VALUES "
                         "('apt_1', '2026-11-25', 'usr_1', 'sent', 1, now(), now());"
                         "INSERT INTO sync_state (entity, high_water_mark, updated_at) VALUES "
                         "('timeline', '2026-01-01 00:00:00+00', now());");
                char id[RUN_ID_MAX];
                run_id_new(id);
                RunRow row = { .id = id, .task_name = (char *) "sync_gazelle", .task_label = (char *) "Sync Gazelle Totale",
                               .started_at = now_realtime() - 3600 * USEC_PER_SEC, .status = (char *) "running",
                               .triggered_by = (char *) "scheduler" };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
                ASSERT_OK(store_run_finish(db, id, "success", "Sync terminée : 2 contacts",
                                           "{\"contacts\":{\"fetched\":2},\"note\":\"l'été 🎹\"}",
                                           row.started_at + 200 * USEC_PER_SEC, 200));
        }

        ASSERT_EQ_INT(run_backup(&e), EXIT_TASK_OK);
        Listing l = {};
        list_dir(e.config.backup_dir, &l);
        ASSERT_EQ_INT(l.n, 1);
        ASSERT(backup_name_valid(l.names[0]));
        _cleanup_free_ char *path = xasprintf("%s/%s", e.config.backup_dir, l.names[0]);
        assert_verified(path);
        struct stat st;
        ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
        ASSERTF((st.st_mode & 07777) == 0600, "mode %o", st.st_mode & 07777);

        sqlite3 *copy = NULL;
        ASSERT_EQ_INT(sqlite3_open_v2(path, &copy, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_copy_text(copy, "PRAGMA journal_mode", "delete");
        assert_copy_text(copy, "SELECT count(*) FROM gazelle_contacts", "2");
        assert_copy_text(copy, "SELECT last_name FROM gazelle_contacts WHERE external_id = 'con_1'",
                         "Côté « l'aînée » 🎹");
        /* Booleans as 0/1, NULL kept, timestamps as the SQLite store's fixed-width UTC text. */
        assert_copy_text(copy, "SELECT is_default || '/' || wants_email FROM gazelle_contacts WHERE external_id = 'con_1'",
                         "1/0");
        assert_copy_text(copy, "SELECT wants_phone FROM gazelle_contacts WHERE external_id = 'con_1'", NULL);
        assert_copy_text(copy, "SELECT synced_at FROM gazelle_contacts WHERE external_id = 'con_1'",
                         "2026-11-24T10:00:00.123456Z");
        assert_copy_text(copy, "SELECT synced_at FROM gazelle_contacts WHERE external_id = 'con_2'",
                         "2026-11-24T10:00:00.000000Z");
        assert_copy_text(copy, "SELECT start_at FROM gazelle_appointments", "2026-11-25T19:30:00.000000Z");
        assert_copy_text(copy, "SELECT typeof(duration_minutes) || ':' || duration_minutes FROM gazelle_appointments",
                         "integer:90");
        assert_copy_text(copy, "SELECT deleted_at FROM gazelle_appointments", NULL);
        assert_copy_text(copy, "SELECT target_date || ' ' || state FROM alert_ledger", "2026-11-25 sent");
        assert_copy_text(copy, "SELECT high_water_mark FROM sync_state", "2026-01-01T00:00:00.000000Z");
        {
                int n = 0;
                while (sqlite_migrations[n].version)
                        n++;
                _cleanup_free_ char *expected = xasprintf("%d", n);
                assert_copy_text(copy, "SELECT count(*) FROM schema_migrations", expected);
        }
        assert_copy_text(copy, "SELECT duration_seconds FROM scheduler_logs WHERE task_name = 'sync_gazelle'", "200");
        sqlite3_close(copy);

        /* The exported scheduler_logs reads back through the store's own reader. */
        {
                _cleanup_(db_closep) Db *c = NULL;
                ASSERT_OK(db_open_sqlite(path, &c));
                RunRow row = { .duration_seconds = -1 };
                ASSERT_EQ_INT(store_run_last(c, "sync_gazelle", NULL, NULL, &row), 1);
                ASSERT_STREQ(row.status, "success");
                ASSERT_STREQ(row.message, "Sync terminée : 2 contacts");
                ASSERT_EQ_INT(row.duration_seconds, 200);
                ASSERT_EQ_INT(row.completed_at - row.started_at, 200 * USEC_PER_SEC);
                cJSON *j = parse_stats(&row);
                ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "note")), "l'été 🎹");
                cJSON_Delete(j);
                run_row_clear(&row);
        }

        RunRow row = { .duration_seconds = -1 };
        last_run(&e, &row);
        ASSERT_STREQ(row.status, "success");
        cJSON *stats = parse_stats(&row);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(stats, "file")), l.names[0]);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(stats, "integrity")), "ok");
        cJSON *tables = cJSON_GetObjectItem(stats, "tables");
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(tables, "gazelle_contacts")), 2);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(tables, "alert_ledger")), 1);
        cJSON_Delete(stats);
        run_row_clear(&row);

        listing_free(&l);
        env_done(&e);
        test_pg_drop_database(pg_admin_url, dbname);
        free(dbname);
}

int main(int argc, char **argv) {
        if (access("/usr/share/zoneinfo/" TZ_MONTREAL, R_OK) < 0)
                test_skip_all("no zoneinfo for %s (install tzdata)", TZ_MONTREAL);
        /* What main() does for every run. */
        tz_init();
        signal(SIGXFSZ, SIG_IGN);
        umask(0077);
        tmp_root = test_mkdtemp("backup");

        static const TestCase common[] = {
                TEST_CASE(name_pattern),     TEST_CASE(backup_creates_verified_file), TEST_CASE(retention),
                TEST_CASE(disk_full),        TEST_CASE(sigkill_mid_backup),           TEST_CASE(missing_source),
                TEST_CASE(unwritable_backup_dir), TEST_CASE(verify),                  TEST_CASE(restore),
                TEST_CASE(concurrent_writer), TEST_CASE(wal_frames_pending),          TEST_CASE(wal_garbage_tail),
                TEST_CASE(wal_truncated_inside_snapshot), TEST_CASE(non_wal_fallback),  TEST_CASE(sigkill_image_copy),
        };
        TestCase cases[ELEMENTSOF(common) + 1];
        size_t n = ELEMENTSOF(common);
        memcpy(cases, common, sizeof common);

        const char *url;
        TestPgAvailability pg = test_pg_url(&url);
        if (pg == TEST_PG_AVAILABLE) {
                pg_admin_url = xstrdup(url);
                cases[n++] = (TestCase) TEST_CASE(postgresql_export);
        }
        int r = test_run_all(cases, n, argc, argv);
        if (r == 0 && pg == TEST_PG_MISSING) {
                printf("SKIP: TEST_DATABASE_URL_FROM_SBX=1 but SBX_PG_URL is not set (SBX_NO_PG=1?)\n");
                r = EXIT_TEST_SKIP;
        } else if (r == 0 && pg == TEST_PG_NONE)
                test_skip_part("postgresql_export", "TEST_DATABASE_URL is not set");
        free(pg_admin_url);
        test_rm_rf(tmp_root);
        free(tmp_root);
        return r;
}
