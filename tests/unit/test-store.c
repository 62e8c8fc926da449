/* SPDX-License-Identifier: MIT */
/* test-store.c — the store (src/store.c, src/migrate.c, src/db-*.c): migrations, concurrent
 * first opens, the scheduler_logs run lifecycle and column round-trips. Every test
 * runs against SQLite, and against PostgreSQL too when TEST_DATABASE_URL is set (or, with
 * TEST_DATABASE_URL_FROM_SBX=1, SBX_PG_URL from tests/sandbox.sh). Each PostgreSQL test gets a
 * database of its own (CREATE DATABASE test_store_<pid>_<n>), dropped afterwards, so runs are
 * independent. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "config.h"
#include "db.h"
#include "migrate.h"
#include "store.h"
#include "task-lock.h"
#include "test-pg.h"
#include "test.h"
#include "timeutil.h"

#ifndef TEST_FIXTURES_DIR
#define TEST_FIXTURES_DIR "tests/fixtures"
#endif

#define MINUTE_USEC (UINT64_C(60) * USEC_PER_SEC)
#define PENDING_WINDOW (10 * MINUTE_USEC)

static struct {
        DbBackend backend;
        const char *name;  /* "sqlite" or "postgresql", printed with each test */
        char *admin_url;   /* PostgreSQL: where CREATE DATABASE runs */
        char *tmp_root;
        unsigned counter;
} T;

/* One fresh store: its own state directory (SQLite) or its own database (PostgreSQL). */
typedef struct TestStore {
        Config config;
        char *state_home;
        char *dbname;
        Db *db;
} TestStore;

/* ---- fresh stores ---- */

static void test_store_init(TestStore *s) {
        *s = (TestStore) {};
        unsigned n = ++T.counter;
        if (T.backend == DB_SQLITE) {
                if (asprintf(&s->state_home, "%s/state-%u", T.tmp_root, n) < 0)
                        abort();
                setenv("XDG_STATE_HOME", s->state_home, 1);
                unsetenv("DATABASE_URL");
        } else {
                s->dbname = test_pg_create_database(T.admin_url, "store");
                _cleanup_free_ char *url = test_pg_conninfo_with_dbname(T.admin_url, s->dbname);
                /* The state directory still holds locks; give it a private one. */
                if (asprintf(&s->state_home, "%s/state-%u", T.tmp_root, n) < 0)
                        abort();
                setenv("XDG_STATE_HOME", s->state_home, 1);
                setenv("DATABASE_URL", url, 1);
        }
        int r = config_load(&s->config, BUS_USER);
        ASSERT_OKF(r, "config_load: %s", s->config.error);
        ASSERT(T.backend == DB_SQLITE ? s->config.database_url == NULL : s->config.database_url != NULL);
}

static Db *test_store_open(TestStore *s) {
        Db *db = NULL;
        int r = store_open(&s->config, &db);
        ASSERT_OKF(r, "store_open (%s): %s", T.name, db ? db_error(db) : "?");
        ASSERT(db);
        ASSERT_EQ_INT(db_backend(db), T.backend);
        return db;
}

/* A fresh store, open in s->db (closed by test_store_done()). */
static Db *test_store_start(TestStore *s) {
        test_store_init(s);
        return s->db = test_store_open(s);
}

static void test_store_done(TestStore *s) {
        s->db = db_close(s->db);
        config_clear(&s->config);
        if (s->dbname)
                test_pg_drop_database(T.admin_url, s->dbname);
        test_rm_rf(s->state_home);
        free(s->state_home);
        free(s->dbname);
        unsetenv("DATABASE_URL");
}

static int64_t query_int(Db *db, const char *sql) {
        int64_t v = -1;
        int r = db_query_int(db, sql, DB_NO_PARAMS, &v);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
        ASSERTF(r == 1, "%s: no row", sql);
        return v;
}

/* ---- rows ---- */

typedef struct RowSpec {
        const char *task;
        usec_t started_at;
        const char *status;
        const char *trigger;
        const char *user;
        const char *host;
        const char *invocation_id;
        pid_t pid;
        const char *message;
        uint32_t job;             /* systemd_job_id; 0: NULL */
} RowSpec;

static void insert(Db *db, const RowSpec *spec, char id[static RUN_ID_MAX]) {
        run_id_new(id);
        RunRow row = {
                .id = id,
                .task_name = (char *) spec->task,
                .task_label = (char *) "Libellé",
                .started_at = spec->started_at,
                .status = (char *) spec->status,
                .message = (char *) spec->message,
                .triggered_by = (char *) (spec->trigger ? spec->trigger : "scheduler"),
                .triggered_by_user = (char *) spec->user,
                .invocation_id = (char *) spec->invocation_id,
                .host = (char *) spec->host,
                .pid = spec->pid,
                .systemd_job_id = spec->job,
        };
        int r = store_run_insert(db, &row);
        ASSERT_OKF(r, "store_run_insert: %s", db_error(db));
        ASSERT_EQ_INT(r, 1);
}

/* Reads one row by id through the store's own reader. */
static void read_row(Db *db, const char *id, RunRow *row) {
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        /* All of them: few rows in a test store, and it exercises the streaming reader. */
        int r = store_runs_query(db, 1000, NULL, &c);
        ASSERT_OKF(r, "store_runs_query: %s", db_error(db));
        bool found = false;
        RunRow tmp = { .duration_seconds = -1 };
        while ((r = db_cursor_next(c)) > 0) {
                ASSERT_OK(store_run_read(c, &tmp));
                if (streq(tmp.id, id)) {
                        ASSERT(!found);
                        run_row_clear(row);
                        *row = tmp;
                        tmp = (RunRow) { .duration_seconds = -1 };
                        found = true;
                }
        }
        run_row_clear(&tmp);
        ASSERT_OKF(r, "cursor: %s", db_error(db));
        ASSERTF(found, "row %s not found", id);
}

static void assert_status(Db *db, const char *id, const char *status) {
        RunRow row = { .duration_seconds = -1 };
        read_row(db, id, &row);
        ASSERTF(streq_ptr(row.status, status), "row %s: status %s, expected %s", id, row.status, status);
        run_row_clear(&row);
}

/* ---- tests ---- */

TEST(migrations) {
        TestStore s;
        Db *db = test_store_start(&s);

        int latest = migrate_latest(db);
        ASSERT(latest >= 1);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM schema_migrations"), latest);
        ASSERT_EQ_INT(query_int(db, "SELECT max(version) FROM schema_migrations"), latest);
        ASSERT_EQ_INT(query_int(db, "SELECT count(DISTINCT version) FROM schema_migrations"), latest);
        /* Each with the checksum of its SQL, by which a backup is recognised. */
        ASSERT_EQ_INT(query_int(db, "SELECT count(checksum) FROM schema_migrations"), latest);
        {
                char sum[MIGRATION_CHECKSUM_MAX];
                const Migration *first = db_backend(db) == DB_SQLITE ? sqlite_migrations : postgresql_migrations;
                migration_checksum(first, sum);
                ASSERT_EQ_INT(strlen(sum), 64);
                _cleanup_free_ char *stored = NULL;
                ASSERT_EQ_INT(db_query_text(db, "SELECT checksum FROM schema_migrations WHERE version = 1", DB_NO_PARAMS,
                                            &stored), 1);
                ASSERT_STREQ(stored, sum);
        }
        /* Every table the product owns exists and is empty. */
        static const char *const tables[] = {
                "scheduler_logs", "gazelle_clients", "gazelle_contacts", "gazelle_pianos", "gazelle_timeline_entries",
                "gazelle_appointments", "gazelle_users", "sync_state", "alert_ledger",
        };
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                _cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM %s", tables[i]);
                ASSERT_EQ_INT(query_int(db, sql), 0);
        }

        /* Nothing left to apply, on the same connection and on a new one. */
        ASSERT_EQ_INT(migrate_apply(db), 0);
        ASSERT_EQ_INT(migrate_apply(db), 0);
        Db *again = test_store_open(&s);
        ASSERT_EQ_INT(migrate_apply(again), 0);
        db_close(again);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM schema_migrations"), latest);

        if (T.backend == DB_SQLITE) {
                struct stat st;
                ASSERT_OK(stat(s.config.sqlite_path, &st) < 0 ? -errno : 0);
                ASSERTF((st.st_mode & 077) == 0, "store mode %o", st.st_mode & 0777);
                ASSERT_OK(stat(s.config.state_dir, &st) < 0 ? -errno : 0);
                ASSERTF((st.st_mode & 077) == 0, "state dir mode %o", st.st_mode & 0777);
        }
        test_store_done(&s);
}

/* Migration 003 on a store made by an older version: outbox rows recorded as `sent` become
 * `queued`, provider rows stay `sent`, ids are kept (SQLite rebuilds the table for the CHECK). */
TEST(ledger_outbox_rows_become_queued) {
        if (T.backend != DB_SQLITE)
                return;
        _cleanup_free_ char *dir = test_mkdtemp("store-003");
        _cleanup_free_ char *path = xasprintf("%s/old.sqlite", dir);
        Db *db = NULL;
        ASSERT_OK(db_open_sqlite(path, &db));
        ASSERT_OK(db_exec_script(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                     "applied_at TEXT NOT NULL)"));
        for (const Migration *m = sqlite_migrations; m->name && m->version < 3; m++) {
                ASSERT_OKF(db_exec_script(db, m->sql), "%s", db_error(db));
                ASSERT_OK(db_exec(db, "INSERT INTO schema_migrations VALUES ($1, $2, '2026-11-01T00:00:00Z')",
                                  DB_PARAMS(DBV_I(m->version), DBV_TEXT_OR_NULL(m->name))));
        }
        ASSERT_OK(db_exec_script(db,
                "INSERT INTO alert_ledger (id, appointment_external_id, target_date, technician_external_id, state, "
                "transport, created_at, updated_at) VALUES "
                "(7, 'evt_1', '2026-11-25', 'usr_1', 'sent', 'outbox', 'x', 'x'), "
                "(9, 'evt_2', '2026-11-25', 'usr_1', 'sent', 'sendgrid', 'x', 'x'), "
                "(11, 'evt_3', '2026-11-25', 'usr_1', 'failed', 'outbox', 'x', 'x')"));
        ASSERT(migrate_apply(db) >= 1);
        ASSERT_EQ_INT(query_int(db, "SELECT id FROM alert_ledger WHERE state = 'queued'"), 7);
        ASSERT_EQ_INT(query_int(db, "SELECT id FROM alert_ledger WHERE state = 'sent'"), 9);
        ASSERT_EQ_INT(query_int(db, "SELECT id FROM alert_ledger WHERE state = 'failed'"), 11);
        /* The new CHECK holds, and the index and AUTOINCREMENT came through the rebuild. */
        ASSERT(db_exec_script(db, "UPDATE alert_ledger SET state = 'lost' WHERE id = 7") < 0);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'alert_ledger_target_date'"), 1);
        ASSERT_OK(db_exec_script(db, "INSERT INTO alert_ledger (appointment_external_id, target_date, "
                                     "technician_external_id, created_at, updated_at) VALUES ('evt_4', 'd', 'u', 'x', 'x')"));
        ASSERT_EQ_INT(query_int(db, "SELECT max(id) FROM alert_ledger"), 12);
        db_close(db);
        test_rm_rf(dir);
}

TEST(concurrent_first_open) {
        /* Several runners starting together on a store that does not exist yet: all succeed, and
         * each migration is applied exactly once. A few rounds: the race is the point. */
        const int rounds = T.backend == DB_SQLITE ? 5 : 3, procs = 4;
        for (int round = 0; round < rounds; round++) {
                TestStore s;
                test_store_init(&s);
                int go[2];
                ASSERT_OK(pipe(go) < 0 ? -errno : 0);
                pid_t pids[4];
                for (int i = 0; i < procs; i++) {
                        pids[i] = test_fork();
                        if (pids[i] == 0) {
                                close(go[1]);
                                char c;
                                /* Wait for the starting shot: EOF when the parent closes. */
                                while (read(go[0], &c, 1) < 0 && errno == EINTR)
                                        ;
                                Db *db = NULL;
                                int r = store_open(&s.config, &db);
                                if (r < 0)
                                        fprintf(stderr, "child %d: store_open: %s: %s\n", i, strerror(-r),
                                                db ? db_error(db) : "?");
                                db_close(db);
                                _exit(r < 0 ? 1 : 0);
                        }
                }
                close(go[0]);
                close(go[1]);
                for (int i = 0; i < procs; i++) {
                        int status;
                        ASSERT_EQ_INT(waitpid(pids[i], &status, 0), pids[i]);
                        ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d child %d: status 0x%x",
                                round, i, status);
                }
                s.db = test_store_open(&s);
                int latest = migrate_latest(s.db);
                ASSERT_EQ_INT(query_int(s.db, "SELECT count(*) FROM schema_migrations"), latest);
                ASSERT_EQ_INT(query_int(s.db, "SELECT count(DISTINCT version) FROM schema_migrations"), latest);
                ASSERT_EQ_INT(query_int(s.db, "SELECT count(*) FROM scheduler_logs"), 0);
                test_store_done(&s);
        }
}

TEST(run_ids) {
        char a[RUN_ID_MAX], b[RUN_ID_MAX];
        run_id_new(a);
        run_id_new(b);
        ASSERT(run_id_valid(a));
        ASSERT(run_id_valid(b));
        ASSERT(!streq(a, b));
        ASSERT_EQ_INT(a[14], '4'); /* v4 */
        ASSERT(strchr("89ab", a[19]));
        ASSERT(!run_id_valid(NULL));
        ASSERT(!run_id_valid(""));
        ASSERT(!run_id_valid("not-a-uuid"));
        ASSERT(!run_id_valid("0123456789abcdef0123456789abcdef0123"));
        ASSERT(!run_id_valid("01234567-89ab-cdef-0123-456789abcdeg"));
        ASSERT(run_id_valid("01234567-89AB-cdef-0123-456789abcdef"));
}

TEST(adopt) {
        TestStore s;
        Db *db = test_store_start(&s);
        char host[256];
        host_name(host);
        usec_t now = now_realtime();

        /* What the daemon writes: running, no pid, no invocation id; tied to the start job
         * StartUnit returned (41) once the reply came. */
        char pending[RUN_ID_MAX], old[RUN_ID_MAX], other_task[RUN_ID_MAX], orphan[RUN_ID_MAX], other_job[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 2 * USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .user = "marie@piano-tek.com", .host = host,
                                .message = "En attente du démarrage par systemd", .job = 41 }, pending);
        /* A daemon killed between its INSERT and StartUnit: tied to no job, newer than the others. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .user = "intrus@piano-tek.com", .host = host }, orphan);
        /* Another start's row. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 3 * USEC_PER_SEC, .status = "running",
                                .trigger = "api", .user = "root", .host = host, .job = 43 }, other_job);
        /* Older than the window: never adopted. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 20 * MINUTE_USEC, .status = "running",
                                .trigger = "api", .user = "root", .host = host, .job = 45 }, old);
        insert(db, &(RowSpec) { .task = "sync_gazelle", .started_at = now - USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .user = "x@y.z", .host = host, .job = 41 }, other_task);

        /* An unrelated start (job 42, or no job at all) adopts nothing, however recent the rows. */
        RunRow row = { .duration_seconds = -1 };
        ASSERT_EQ_INT(store_run_adopt(db, "backup", 42, now - PENDING_WINDOW, "i0", host, 4141, &row), 0);
        ASSERT_EQ_INT(store_run_adopt(db, "backup", 0, now - PENDING_WINDOW, "i0", host, 4141, &row), 0);
        ASSERT_NULL(row.id);

        int r = store_run_adopt(db, "backup", 41, now - PENDING_WINDOW, "0123456789abcdef0123456789abcdef", host, 4242,
                                &row);
        ASSERT_OKF(r, "store_run_adopt: %s", db_error(db));
        ASSERT_EQ_INT(r, 1);
        ASSERT_STREQ(row.id, pending);
        ASSERT_STREQ(row.task_name, "backup");
        ASSERT_STREQ(row.status, "running");
        ASSERT_STREQ(row.triggered_by, "manual");
        ASSERT_STREQ(row.triggered_by_user, "marie@piano-tek.com");
        ASSERT_STREQ(row.invocation_id, "0123456789abcdef0123456789abcdef");
        ASSERT_STREQ(row.host, host);
        ASSERT_EQ_INT(row.pid, 4242);
        ASSERT_EQ_INT(row.systemd_job_id, 41);
        ASSERT_EQ_INT(row.started_at, now - 2 * USEC_PER_SEC);
        run_row_clear(&row);

        /* Claimed once: a second runner of the same job finds nothing. */
        r = store_run_adopt(db, "backup", 41, now - PENDING_WINDOW, "fedcba9876543210fedcba9876543210", host, 4343, &row);
        ASSERT_OKF(r, "store_run_adopt: %s", db_error(db));
        ASSERT_EQ_INT(r, 0);
        ASSERT_NULL(row.id);

        /* The adoption is stored, the others untouched. */
        read_row(db, pending, &row);
        ASSERT_STREQ(row.invocation_id, "0123456789abcdef0123456789abcdef");
        ASSERT_EQ_INT(row.pid, 4242);
        const char *untouched[] = { old, other_task, orphan, other_job };
        for (size_t i = 0; i < ELEMENTSOF(untouched); i++) {
                read_row(db, untouched[i], &row);
                ASSERT_NULL(row.invocation_id);
                ASSERT_EQ_INT(row.pid, 0);
        }
        run_row_clear(&row);

        /* Each start its own row; a window wide enough reaches the old one; a finished row is
         * never adopted. */
        ASSERT_EQ_INT(store_run_adopt(db, "backup", 43, now - PENDING_WINDOW, "i3", host, 5, &row), 1);
        ASSERT_STREQ(row.id, other_job);
        ASSERT_EQ_INT(store_run_adopt(db, "backup", 45, now - PENDING_WINDOW, "i4", host, 6, &row), 0);
        ASSERT_EQ_INT(store_run_adopt(db, "backup", 45, now - 30 * MINUTE_USEC, "i4", host, 6, &row), 1);
        ASSERT_STREQ(row.id, old);
        char done[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "rv_alerts", .started_at = now - USEC_PER_SEC, .status = "success",
                                .trigger = "manual", .job = 50 }, done);
        ASSERT_EQ_INT(store_run_adopt(db, "rv_alerts", 50, now - PENDING_WINDOW, "i1", host, 1, &row), 0);
        run_row_clear(&row);

        /* The tie is written only while the row is pending. */
        char tied[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "rapport_timeline", .started_at = now, .status = "running", .trigger = "api",
                                .host = host }, tied);
        int64_t untied = -1;
        ASSERT_OK(store_run_pending_untied(db, "rapport_timeline", host, now - MINUTE_USEC, &untied));
        ASSERT_EQ_INT(untied, 1);
        ASSERT_EQ_INT(store_run_set_job(db, tied, 77), 1);
        ASSERT_OK(store_run_pending_untied(db, "rapport_timeline", host, now - MINUTE_USEC, &untied));
        ASSERT_EQ_INT(untied, 0);
        ASSERT_EQ_INT(store_run_adopt(db, "rapport_timeline", 77, now - PENDING_WINDOW, "i5", host, 7, &row), 1);
        ASSERT_EQ_INT(store_run_set_job(db, tied, 78), 0);
        run_row_clear(&row);
        test_store_done(&s);
}

/* The unit's only live job is known: pending rows tied to any other job, and untied ones older
 * than the tie's grace, are closed at once, not after the adoption window. */
TEST(reap_dead_jobs) {
        TestStore s;
        Db *db = test_store_start(&s);
        char host[256];
        host_name(host);
        usec_t now = now_realtime();
        char mine[RUN_ID_MAX], dead_job[RUN_ID_MAX], orphan[RUN_ID_MAX], young[RUN_ID_MAX], live[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "manual",
                                .host = host, .pid = getpid(), .job = 90 }, mine);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 5 * USEC_PER_SEC, .status = "running",
                                .trigger = "api", .host = host, .job = 12 }, dead_job);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 5 * USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .user = "intrus@piano-tek.com", .host = host }, orphan);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "api",
                                .host = host }, young);
        /* Unknown live job: the old rule (window) alone. */
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, mine, STORE_LIVE_JOB_UNKNOWN, now - PENDING_WINDOW, now), 0);
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, mine, 90, now - 3 * USEC_PER_SEC, now), 2);
        assert_status(db, dead_job, "error");
        assert_status(db, orphan, "error");
        assert_status(db, young, "running");
        assert_status(db, mine, "running");
        /* A row tied to the live job itself stays (its runner is about to adopt it). */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "api",
                                .host = host, .job = 91 }, live);
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, NULL, 91, now - 3 * USEC_PER_SEC, now), 1); /* mine: pid */
        assert_status(db, live, "running");
        /* No live job at all (the daemon at start-up, the unit idle): every pending row goes. */
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, NULL, 0, now + 1, now), 2);
        assert_status(db, live, "error");
        assert_status(db, young, "error");
        test_store_done(&s);
}

TEST(adopt_race) {
        /* Four runners adopt at once, each on its own connection: exactly one wins. */
        TestStore s;
        test_store_start(&s);
        char host[256], pending[RUN_ID_MAX];
        host_name(host);
        usec_t now = now_realtime();
        insert(s.db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "manual",
                                  .user = "a@b.c", .host = host, .job = 7 }, pending);

        int go[2];
        ASSERT_OK(pipe(go) < 0 ? -errno : 0);
        pid_t pids[4];
        for (int i = 0; i < 4; i++) {
                pids[i] = test_fork();
                if (pids[i] == 0) {
                        close(go[1]);
                        char c;
                        while (read(go[0], &c, 1) < 0 && errno == EINTR)
                                ;
                        Db *db = NULL;
                        if (store_open(&s.config, &db) < 0)
                                _exit(3);
                        RunRow row = { .duration_seconds = -1 };
                        char inv[32];
                        snprintf(inv, sizeof inv, "inv%d", i);
                        int r = store_run_adopt(db, "backup", 7, now - PENDING_WINDOW, inv, host, getpid(), &row);
                        if (r < 0)
                                fprintf(stderr, "child %d: adopt: %s\n", i, db_error(db));
                        run_row_clear(&row);
                        db_close(db);
                        _exit(r < 0 ? 3 : r == 1 ? 10 : 11);
                }
        }
        close(go[0]);
        close(go[1]);
        int won = 0;
        for (int i = 0; i < 4; i++) {
                int status;
                ASSERT_EQ_INT(waitpid(pids[i], &status, 0), pids[i]);
                ASSERTF(WIFEXITED(status) && (WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11),
                        "child %d: status 0x%x", i, status);
                won += WEXITSTATUS(status) == 10;
        }
        ASSERT_EQ_INT(won, 1);
        RunRow row = { .duration_seconds = -1 };
        read_row(s.db, pending, &row);
        ASSERT(row.invocation_id && strncmp(row.invocation_id, "inv", 3) == 0);
        ASSERT(row.pid > 0);
        run_row_clear(&row);
        test_store_done(&s);
}

TEST(finish) {
        TestStore s;
        Db *db = test_store_start(&s);
        usec_t now = now_realtime();
        char id[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 5 * USEC_PER_SEC, .status = "running",
                                .trigger = "cli", .user = "root", .pid = getpid() }, id);

        int r = store_run_finish(db, id, "warning", "Sauvegarde créée, rotation échouée", "{\"kept\":3}", now, 5);
        ASSERT_OKF(r, "store_run_finish: %s", db_error(db));
        ASSERT_EQ_INT(r, 0);
        RunRow row = { .duration_seconds = -1 };
        read_row(db, id, &row);
        ASSERT_STREQ(row.status, "warning");
        ASSERT_STREQ(row.message, "Sauvegarde créée, rotation échouée");
        ASSERT_EQ_INT(row.completed_at, now);
        ASSERT_EQ_INT(row.duration_seconds, 5);
        cJSON *j = cJSON_Parse(row.stats);
        ASSERT(j);
        ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "kept")), 3);
        cJSON_Delete(j);

        /* NULL stats become {}, a NULL duration stays NULL. */
        ASSERT_OK(store_run_finish(db, id, "error", "Échec", NULL, now + 1, -1));
        read_row(db, id, &row);
        ASSERT_STREQ(row.status, "error");
        ASSERT_EQ_INT(row.duration_seconds, -1);
        ASSERT(row.stats);
        j = cJSON_Parse(row.stats);
        ASSERT(cJSON_IsObject(j) && cJSON_GetArraySize(j) == 0);
        cJSON_Delete(j);
        run_row_clear(&row);

        /* An unknown id is an error, not a silent no-op. */
        char unknown[RUN_ID_MAX];
        run_id_new(unknown);
        ASSERT_ERRNO(store_run_finish(db, unknown, "success", "x", "{}", now, 1), -ENOENT);
        ASSERT_CONTAINS(db_error(db), unknown);
        /* A status outside the schema's list is refused by the store. */
        ASSERT(store_run_finish(db, id, "bogus", "x", "{}", now, 1) < 0);
        assert_status(db, id, "error");
        test_store_done(&s);
}

TEST(reap) {
        TestStore s;
        Db *db = test_store_start(&s);
        char host[256];
        host_name(host);
        usec_t now = now_realtime();

        char dead[RUN_ID_MAX], dead_inv[RUN_ID_MAX], keep[RUN_ID_MAX], fresh[RUN_ID_MAX], stale[RUN_ID_MAX],
                elsewhere[RUN_ID_MAX], other_task[RUN_ID_MAX], finished[RUN_ID_MAX], stale_nohost[RUN_ID_MAX];
        /* A runner that died (SIGKILL): has a pid. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 3600 * USEC_PER_SEC, .status = "running",
                                .trigger = "scheduler", .host = host, .pid = 999999, .invocation_id = "aaaa" }, dead);
        /* A runner that died right after adopting (invocation id set, pid too). */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 60 * USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .host = host, .invocation_id = "bbbb", .pid = 999998 }, dead_inv);
        /* Ourselves. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "cli",
                                .host = host, .pid = getpid() }, keep);
        /* A daemon start on its way to a runner: not ours to reap. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 30 * USEC_PER_SEC, .status = "running",
                                .trigger = "manual", .user = "a@b.c", .host = host }, fresh);
        /* A daemon start that never reached a runner. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 20 * MINUTE_USEC, .status = "running",
                                .trigger = "api", .user = "root", .host = host }, stale);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 25 * MINUTE_USEC, .status = "running",
                                .trigger = "api", .user = "root" }, stale_nohost);
        /* Another host's runner: its lock is not ours, it may be alive. */
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 3600 * USEC_PER_SEC, .status = "running",
                                .trigger = "scheduler", .host = "autre-hote", .pid = 123 }, elsewhere);
        insert(db, &(RowSpec) { .task = "sync_gazelle", .started_at = now - 3600 * USEC_PER_SEC,
                                .status = "running", .trigger = "scheduler", .host = host, .pid = 77 }, other_task);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now - 7200 * USEC_PER_SEC, .status = "success",
                                .trigger = "scheduler", .host = host, .pid = 55 }, finished);

        const char *msg = RUN_INTERRUPTED_MESSAGE;
        int r = store_run_reap(db, "backup", host, keep, STORE_LIVE_JOB_UNKNOWN, now - PENDING_WINDOW, now);
        ASSERT_OKF(r, "store_run_reap: %s", db_error(db));
        ASSERT_EQ_INT(r, 4);

        RunRow row = { .duration_seconds = -1 };
        const char *reaped[] = { dead, dead_inv, stale, stale_nohost };
        for (size_t i = 0; i < ELEMENTSOF(reaped); i++) {
                read_row(db, reaped[i], &row);
                ASSERT_STREQ(row.status, "error");
                ASSERT_STREQ(row.message, msg);
                ASSERT_EQ_INT(row.completed_at, now);
        }
        const char *kept[] = { keep, fresh, elsewhere, other_task };
        for (size_t i = 0; i < ELEMENTSOF(kept); i++) {
                read_row(db, kept[i], &row);
                ASSERTF(streq(row.status, "running"), "row %zu: %s", i, row.status);
                ASSERT_EQ_INT(row.completed_at, 0);
        }
        assert_status(db, finished, "success");

        /* Idempotent. */
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, keep, STORE_LIVE_JOB_UNKNOWN, now - PENDING_WINDOW, now), 0);
        /* Without a kept id (the daemon at start-up), our own row goes too. */
        ASSERT_EQ_INT(store_run_reap(db, "backup", host, NULL, STORE_LIVE_JOB_UNKNOWN, now - PENDING_WINDOW, now), 1);
        assert_status(db, keep, "error");
        assert_status(db, fresh, "running");
        run_row_clear(&row);
        test_store_done(&s);
}

/* The cross-host lease (task-lock.h): one holder at a time, named to the others; renewed only by
 * its holder; an expired lease (a dead host) or one of this host (whose flock the caller holds)
 * taken over with the dead run closed interrupted; released by its holder only. */
TEST(lease) {
        TestStore s;
        Db *db = test_store_start(&s);
        const Task *t = task_get(TASK_BACKUP);
        usec_t now = now_realtime();
        char a[RUN_ID_MAX], b[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "cli",
                                .host = "hote-a", .pid = 11 }, a);
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "cli",
                                .host = "hote-b", .pid = 12 }, b);

        TaskLeaseHolder h = {};
        ASSERT_OKF(task_lease_take(db, t, "hote-a", a, 60, &h), "%s", db_error(db));
        ASSERT_STREQ(h.host, "");
        ASSERT_EQ_INT(task_lease_get(db, t, &h), 1);
        ASSERT_STREQ(h.host, "hote-a");
        ASSERT_STREQ(h.run_id, a);
        /* Another host: busy, told who holds it; the holder's run untouched. */
        ASSERT_ERRNO(task_lease_take(db, t, "hote-b", b, 60, &h), -EBUSY);
        ASSERT_STREQ(h.host, "hote-a");
        ASSERT_STREQ(h.run_id, a);
        assert_status(db, a, "running");
        ASSERT_OK(task_lease_renew(db, t, a, 60));
        ASSERT_ERRNO(task_lease_renew(db, t, b, 60), -ESTALE);
        ASSERT_OK(task_lease_release(db, t, b)); /* not b's: nothing happens */
        ASSERT_EQ_INT(task_lease_get(db, t, &h), 1);

        /* Expired: hote-a died. hote-b takes it over and closes hote-a's run as interrupted. */
        ASSERT_OK(db_exec(db, "UPDATE task_leases SET expires_at = '2000-01-01T00:00:00.000000Z'", DB_NO_PARAMS));
        ASSERT_EQ_INT(task_lease_get(db, t, &h), 0);
        ASSERT_OKF(task_lease_take(db, t, "hote-b", b, 60, &h), "%s", db_error(db));
        ASSERT_STREQ(h.host, "hote-a");
        ASSERT_STREQ(h.run_id, a);
        assert_status(db, a, "error");
        ASSERT_ERRNO(task_lease_renew(db, t, a, 60), -ESTALE);

        /* The same host, live lease: a dead run of this host (the caller holds the flock). */
        char c[RUN_ID_MAX];
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "running", .trigger = "cli",
                                .host = "hote-b", .pid = 13 }, c);
        ASSERT_OKF(task_lease_take(db, t, "hote-b", c, 60, &h), "%s", db_error(db));
        ASSERT_STREQ(h.run_id, b);
        assert_status(db, b, "error");

        ASSERT_OK(task_lease_release(db, t, c));
        ASSERT_EQ_INT(task_lease_get(db, t, &h), 0);
        int64_t n = -1;
        ASSERT_EQ_INT(db_query_int(db, "SELECT count(*) FROM task_leases", DB_NO_PARAMS, &n), 1);
        ASSERT_EQ_INT(n, 0);
        test_store_done(&s);
}

TEST(scheduled_success_between) {
        TestStore s;
        Db *db = test_store_start(&s);
        /* 2026-03-08, the report's slot falls in the DST gap: 02:00 → 07:00Z. */
        usec_t slot = local_to_utc((LocalDate) { 2026, 3, 8 }, 2, 0);
        usec_t next = local_to_utc((LocalDate) { 2026, 3, 9 }, 2, 0);
        char id[RUN_ID_MAX];

        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot, next), 0);

        /* Runs that do not count. */
        static const struct {
                const char *status, *trigger;
        } no[] = {
                { "error", "scheduler" }, { "running", "scheduler" }, { "skipped", "scheduler" },
                { "success", "manual" },  { "success", "api" },       { "success", "cli" },
        };
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                insert(db, &(RowSpec) { .task = "rapport_timeline", .started_at = slot + (i + 1) * MINUTE_USEC,
                                        .status = no[i].status, .trigger = no[i].trigger }, id);
        insert(db, &(RowSpec) { .task = "backup", .started_at = slot + 30 * MINUTE_USEC, .status = "success",
                                .trigger = "scheduler" }, id);
        /* Just outside on both sides: one µs before the slot, exactly at the next slot. */
        insert(db, &(RowSpec) { .task = "rapport_timeline", .started_at = slot - 1, .status = "success",
                                .trigger = "scheduler" }, id);
        insert(db, &(RowSpec) { .task = "rapport_timeline", .started_at = next, .status = "success",
                                .trigger = "scheduler" }, id);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot, next), 0);
        /* The bounds are half-open: the row at `next` belongs to the next window, the row at
         * slot - 1 to the previous one. */
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", next, next + 1), 1);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot - 1, slot), 1);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot - 2, slot - 1), 0);

        /* A warning counts as done. */
        insert(db, &(RowSpec) { .task = "rapport_timeline", .started_at = slot + 3 * 3600 * USEC_PER_SEC,
                                .status = "warning", .trigger = "scheduler" }, id);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot, next), 1);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot, slot + 3 * 3600 * USEC_PER_SEC), 0);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "rapport_timeline", slot + 3 * 3600 * USEC_PER_SEC,
                                                      slot + 3 * 3600 * USEC_PER_SEC + 1), 1);
        /* A success exactly at the slot instant counts. */
        insert(db, &(RowSpec) { .task = "sync_gazelle", .started_at = slot, .status = "success",
                                .trigger = "scheduler" }, id);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "sync_gazelle", slot, next), 1);
        ASSERT_EQ_INT(store_scheduled_success_between(db, "sync_gazelle", slot + 1, next), 0);
        test_store_done(&s);
}

TEST(runs_query) {
        TestStore s;
        Db *db = test_store_start(&s);
        usec_t t0 = now_realtime() - 3600 * USEC_PER_SEC;
        const char *tasks[] = { "backup", "sync_gazelle", "backup", "rv_alerts", "backup", "sync_gazelle" };
        char ids[6][RUN_ID_MAX];
        /* Inserted out of order: the order comes from started_at, not from insertion. */
        const int order[] = { 3, 0, 5, 1, 4, 2 };
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                int i = order[k];
                insert(db, &(RowSpec) { .task = tasks[i], .started_at = t0 + (usec_t) i * MINUTE_USEC,
                                        .status = "success", .trigger = "scheduler" }, ids[i]);
        }

        RunRow row = { .duration_seconds = -1 };
        DbCursor *c = NULL;
        ASSERT_OKF(store_runs_query(db, 3, NULL, &c), "%s", db_error(db));
        for (int expect = 5; expect >= 3; expect--) {
                ASSERT_EQ_INT(db_cursor_next(c), 1);
                ASSERT_OK(store_run_read(c, &row));
                ASSERT_STREQ(row.id, ids[expect]);
        }
        ASSERT_EQ_INT(db_cursor_next(c), 0);
        c = db_cursor_free(c);

        ASSERT_OKF(store_runs_query(db, 100, "backup", &c), "%s", db_error(db));
        const int backups[] = { 4, 2, 0 };
        for (size_t k = 0; k < ELEMENTSOF(backups); k++) {
                ASSERT_EQ_INT(db_cursor_next(c), 1);
                ASSERT_OK(store_run_read(c, &row));
                ASSERT_STREQ(row.id, ids[backups[k]]);
                ASSERT_STREQ(row.task_name, "backup");
        }
        ASSERT_EQ_INT(db_cursor_next(c), 0);
        c = db_cursor_free(c);

        ASSERT_OKF(store_runs_query(db, 1, "sync_gazelle", &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 1);
        ASSERT_OK(store_run_read(c, &row));
        ASSERT_STREQ(row.id, ids[5]);
        ASSERT_EQ_INT(db_cursor_next(c), 0);
        c = db_cursor_free(c);

        ASSERT_OKF(store_runs_query(db, 10, "rapport_timeline", &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 0);
        c = db_cursor_free(c);

        /* A cursor dropped half-way leaves the connection usable. */
        ASSERT_OKF(store_runs_query(db, 100, NULL, &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 1);
        c = db_cursor_free(c);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM scheduler_logs"), 6);

        /* store_run_last, with and without a status filter. */
        ASSERT_EQ_INT(store_run_last(db, "backup", NULL, NULL, &row), 1);
        ASSERT_STREQ(row.id, ids[4]);
        ASSERT_OK(store_run_finish(db, ids[4], "error", "x", "{}", t0 + 10 * MINUTE_USEC, 1));
        ASSERT_EQ_INT(store_run_last(db, "backup", "success", "warning", &row), 1);
        ASSERT_STREQ(row.id, ids[2]);
        ASSERT_EQ_INT(store_run_last(db, "backup", "error", NULL, &row), 1);
        ASSERT_STREQ(row.id, ids[4]);
        ASSERT_EQ_INT(store_run_last(db, "rapport_timeline", NULL, NULL, &row), 0);
        run_row_clear(&row);
        test_store_done(&s);
}

static void assert_json_equal(const char *got, const char *expected) {
        cJSON *a = cJSON_Parse(got), *b = cJSON_Parse(expected);
        ASSERTF(a, "stats is not JSON: %s", got ? got : "NULL");
        ASSERT(b);
        /* PostgreSQL's jsonb reorders keys and spacing: compare values, not text. */
        ASSERTF(cJSON_Compare(a, b, true), "stats %s != %s", got, expected);
        cJSON_Delete(a);
        cJSON_Delete(b);
}

TEST(round_trip) {
        TestStore s;
        Db *db = test_store_start(&s);
        char id[RUN_ID_MAX], nulls[RUN_ID_MAX];
        const char *message = "Rapport « Vincent d'Indy » : 3 lignes, l'été ; \"guillemets\", 'apostrophes', "
                              "\\barre\\, tab\tici, émoji 🎹✅❌⏳ et 中文";
        const char *stats = "{\"fichier\":\"db_backup_20261124_030000.sqlite\",\"note\":\"l'été \\\"chaud\\\" 🎹\","
                            "\"octets\":123456789,\"ratio\":0.5,\"ok\":true,\"rien\":null,"
                            "\"techniciens\":{\"Nick\":2,\"Jean-Philippe\":0},\"liste\":[1,\"deux\",{\"3\":[]}]}";
        usec_t started = now_realtime() - 90 * USEC_PER_SEC + 123; /* µs precision survives */
        usec_t created = started - 7;
        usec_t completed = started + 61 * USEC_PER_SEC + 999999;

        run_id_new(id);
        RunRow full = {
                .id = id,
                .task_name = (char *) "rapport_timeline",
                .task_label = (char *) "Rapport Timeline Google Sheets — été",
                .started_at = started,
                .status = (char *) "running",
                .message = (char *) "démarrage",
                .stats = (char *) "{\"étape\":\"début\"}",
                .triggered_by = (char *) "manual",
                .triggered_by_user = (char *) "hélène.côté+test@piano-tek.com",
                .created_at = created,
                .invocation_id = (char *) "5d1a6b2c3e4f40718293a4b5c6d7e8f9",
                .host = (char *) "hôte-01",
                .pid = 2147483000,
        };
        ASSERT_OKF(store_run_insert(db, &full), "%s", db_error(db));
        ASSERT_OKF(store_run_finish(db, id, "success", message, stats, completed, 62), "%s", db_error(db));

        RunRow row = { .duration_seconds = -1 };
        read_row(db, id, &row);
        ASSERT_STREQ(row.id, id);
        ASSERT_STREQ(row.task_name, "rapport_timeline");
        ASSERT_STREQ(row.task_label, "Rapport Timeline Google Sheets — été");
        ASSERT_EQ_INT(row.started_at, started);
        ASSERT_EQ_INT(row.completed_at, completed);
        ASSERT_EQ_INT(row.duration_seconds, 62);
        ASSERT_STREQ(row.status, "success");
        ASSERT_STREQ(row.message, message);
        assert_json_equal(row.stats, stats);
        ASSERT_STREQ(row.triggered_by, "manual");
        ASSERT_STREQ(row.triggered_by_user, "hélène.côté+test@piano-tek.com");
        ASSERT_EQ_INT(row.created_at, created);
        ASSERT_STREQ(row.invocation_id, "5d1a6b2c3e4f40718293a4b5c6d7e8f9");
        ASSERT_STREQ(row.host, "hôte-01");
        ASSERT_EQ_INT(row.pid, 2147483000);

        /* Every nullable column NULL. */
        run_id_new(nulls);
        RunRow sparse = {
                .id = nulls,
                .task_name = (char *) "backup",
                .started_at = started + 1,
                .triggered_by = (char *) "scheduler",
        };
        ASSERT_OKF(store_run_insert(db, &sparse), "%s", db_error(db));
        read_row(db, nulls, &row);
        ASSERT_STREQ(row.id, nulls);
        ASSERT_STREQ(row.task_name, "backup");
        ASSERT_NULL(row.task_label);
        ASSERT_EQ_INT(row.started_at, started + 1);
        ASSERT_EQ_INT(row.completed_at, 0);
        ASSERT_EQ_INT(row.duration_seconds, -1);
        ASSERT_STREQ(row.status, "running"); /* the default */
        ASSERT_NULL(row.message);
        assert_json_equal(row.stats, "{}");
        ASSERT_STREQ(row.triggered_by, "scheduler");
        ASSERT_NULL(row.triggered_by_user);
        ASSERT_EQ_INT(row.created_at, started + 1); /* defaults to started_at */
        ASSERT_NULL(row.invocation_id);
        ASSERT_NULL(row.host);
        ASSERT_EQ_INT(row.pid, 0);

        /* The product's statuses and triggers are all accepted; others are refused. */
        static const char *const statuses[] = { "running", "success", "warning", "error", "skipped" };
        static const char *const triggers[] = { "scheduler", "manual", "api", "cli" };
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                for (size_t k = 0; k < ELEMENTSOF(triggers); k++)
                        insert(db, &(RowSpec) { .task = "rv_alerts", .started_at = started + 10 + i * 10 + k,
                                                .status = statuses[i], .trigger = triggers[k] }, id);
        char bad[RUN_ID_MAX];
        run_id_new(bad);
        ASSERT(store_run_insert(db, &(RunRow) { .id = bad, .task_name = (char *) "backup", .started_at = started,
                                                .status = (char *) "done", .triggered_by = (char *) "cli" }) < 0);
        ASSERT(store_run_insert(db, &(RunRow) { .id = bad, .task_name = (char *) "backup", .started_at = started,
                                                .status = (char *) "running", .triggered_by = (char *) "cron" }) < 0);
        /* The id is the primary key. */
        ASSERT_ERRNO(store_run_insert(db, &sparse), -EEXIST);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM scheduler_logs"), 2 + 20);
        run_row_clear(&row);
        test_store_done(&s);
}

TEST(open_failure_message) {
        /* A store that cannot be opened says why: the half-open Db carries the engine's text. */
        TestStore s;
        test_store_init(&s);
        Db *db = NULL;
        if (T.backend == DB_SQLITE) {
                /* The store's path is taken by a directory. */
                ASSERT_OK(mkdir_p(s.config.sqlite_path, 0700));
                int r = store_open(&s.config, &db);
                ASSERT(r < 0);
                ASSERT(db);
                ASSERT_CONTAINS(db_error(db), "SQLite: ");
        } else {
                /* A database that does not exist, on the same server. */
                _cleanup_free_ char *url = test_pg_conninfo_with_dbname(T.admin_url, "test_does_not_exist");
                char *saved = s.config.database_url;
                s.config.database_url = url;
                int r = store_open(&s.config, &db);
                s.config.database_url = saved;
                ASSERT_ERRNO(r, -ECONNREFUSED);
                ASSERT(db);
                ASSERT_CONTAINS(db_error(db), "PostgreSQL: ");
                ASSERT_CONTAINS(db_error(db), "test_does_not_exist");
                ASSERT(!strchr(db_error(db), '\n'));
        }
        db_close(db);
        test_store_done(&s);
}

TEST(postgresql_unreachable) {
        /* No server needed: a dead endpoint fails fast, and the message never shows the password. */
        Db *db = NULL;
        usec_t t0 = now_monotonic();
        int r = db_open_postgresql("postgresql://gazelle:s3cr3t-P4ss@/gazelle?host=/nonexistent-gazelle-test", &db);
        ASSERT_ERRNO(r, -ECONNREFUSED);
        ASSERT(db);
        ASSERT_CONTAINS(db_error(db), "PostgreSQL: ");
        ASSERTF(!strstr(db_error(db), "s3cr3t"), "password in the error: %s", db_error(db));
        ASSERT(!strchr(db_error(db), '\n'));
        ASSERT(now_monotonic() - t0 < 15 * USEC_PER_SEC);
        db_close(db);

        r = db_open_postgresql("host=/nonexistent-gazelle-test dbname=x password=s3cr3t-P4ss", &db);
        ASSERT(r < 0);
        ASSERTF(!strstr(db_error(db), "s3cr3t"), "password in the error: %s", db_error(db));
        db_close(db);
}

/* PostgreSQL only: what the URL says wins over our connection defaults, and no session state
 * is needed (a transaction pooler may hand each statement another server connection): the
 * server's time zone, whatever it is, changes no timestamp read or written. */
TEST(postgresql_session) {
        TestStore s;
        test_store_start(&s);
        _cleanup_free_ char *v = NULL;
        ASSERT_OKF(db_exec(s.db, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', "
                           "current_database(), 'America/Montreal'); END $$", DB_NO_PARAMS), "%s", db_error(s.db));
        s.db = db_close(s.db);
        s.db = test_store_open(&s);
        ASSERT_EQ_INT(db_query_text(s.db, "SELECT current_setting('TimeZone')", DB_NO_PARAMS, &v), 1);
        ASSERT_STREQ(v, "America/Montreal");
        free(v);
        char id[RUN_ID_MAX];
        run_id_new(id);
        usec_t started = 1782900000123456; /* 2026-07-01, EDT */
        RunRow row = { .id = id, .task_name = (char *) "backup", .task_label = (char *) "Backup SQL",
                       .started_at = started, .status = (char *) "running", .triggered_by = (char *) "cli" };
        ASSERT_OKF(store_run_insert(s.db, &row), "%s", db_error(s.db));
        _cleanup_(run_row_clear) RunRow got = { .duration_seconds = -1 };
        ASSERT_EQ_INT(store_run_get(s.db, id, &got), 1);
        ASSERT_EQ_INT((long long) got.started_at, (long long) started);
        ASSERT_EQ_INT(db_query_text(s.db, "SELECT current_setting('application_name')", DB_NO_PARAMS, &v), 1);
        ASSERT_STREQ(v, "gazelle-scheduler");
        free(v);
        ASSERT_EQ_INT(db_query_text(s.db, "SELECT current_setting('client_encoding')", DB_NO_PARAMS, &v), 1);
        ASSERT_STREQ(v, "UTF8");
        free(TAKE_PTR(v));
        s.db = db_close(s.db);

        /* Settings in the URL are the user's: they override our defaults, except the encoding
         * (all our text is UTF-8). */
        _cleanup_free_ char *url = xasprintf("%s application_name='mon-outil' connect_timeout='3' "
                                             "client_encoding='LATIN1'", s.config.database_url);
        Db *db = NULL;
        ASSERT_OKF(db_open_postgresql(url, &db), "%s", db_error(db));
        ASSERT_EQ_INT(db_query_text(db, "SELECT current_setting('application_name')", DB_NO_PARAMS, &v), 1);
        ASSERT_STREQ(v, "mon-outil");
        free(v);
        ASSERT_EQ_INT(db_query_text(db, "SELECT current_setting('client_encoding')", DB_NO_PARAMS, &v), 1);
        ASSERT_STREQ(v, "UTF8");
        free(TAKE_PTR(v));
        db_close(db);
        test_store_done(&s);
}

/* PostgreSQL only: the table made by the old system's script is completed in place. */
TEST(legacy_table_migration) {
        TestStore s;
        test_store_init(&s);

        _cleanup_free_ char *fixture = NULL;
        const char *path = TEST_FIXTURES_DIR "/legacy_create_scheduler_logs_table.sql";
        ASSERT_OKF(read_file_bounded(path, 1 << 20, &fixture), "%s", path);
        {
                _cleanup_(db_closep) Db *raw = NULL;
                ASSERT_OK(db_open_postgresql(s.config.database_url, &raw));
                ASSERT_OKF(db_exec_script(raw, fixture), "%s", db_error(raw));
                /* Three rows the old system wrote. */
                ASSERT_OKF(db_exec_script(raw,
                        "INSERT INTO scheduler_logs (task_name, task_label, started_at, completed_at, duration_seconds, "
                        "status, message, stats, triggered_by, triggered_by_user) VALUES "
                        "('sync_gazelle', 'Sync Gazelle Totale', '2026-01-10 06:00:00+00', '2026-01-10 06:03:20+00', "
                        " 200, 'success', 'Sync terminée', '{\"clients\": 150, \"pianos\": 250}', 'scheduler', NULL), "
                        "('rv_alerts', 'Sync RV & Alertes', '2026-01-10 21:00:00.5+00', '2026-01-10 21:00:02+00', "
                        " 2, 'error', 'SendGrid: 401 « clé invalide »', '{}', 'manual', 'marie@piano-tek.com'); "
                        /* A run the old process never finished (it crashed): still 'running'. */
                        "INSERT INTO scheduler_logs (task_name, task_label, started_at, status, triggered_by) "
                        "VALUES ('backup', 'Backup SQL', now() - interval '2 hours', 'running', 'api');"),
                        "%s", db_error(raw));
                /* The old CHECKs refuse what we write: this is what the migration must change. */
                ASSERT(db_exec(raw, "INSERT INTO scheduler_logs (task_name, status) VALUES ('backup', 'warning')",
                               DB_NO_PARAMS) < 0);
        }

        s.db = test_store_open(&s);
        Db *db = s.db;
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM schema_migrations"), migrate_latest(db));
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM scheduler_logs"), 3);

        /* The old rows read back through the store, new columns NULL, created_at kept. */
        DbCursor *c = NULL;
        RunRow row = { .duration_seconds = -1 };
        ASSERT_OKF(store_runs_query(db, 10, "sync_gazelle", &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 1);
        ASSERT_OK(store_run_read(c, &row));
        c = db_cursor_free(c);
        ASSERT(run_id_valid(row.id));
        ASSERT_STREQ(row.task_label, "Sync Gazelle Totale");
        ASSERT_STREQ(row.status, "success");
        ASSERT_STREQ(row.message, "Sync terminée");
        ASSERT_EQ_INT(row.duration_seconds, 200);
        usec_t t;
        ASSERT_OK(parse_iso_utc("2026-01-10T06:00:00Z", &t));
        ASSERT_EQ_INT(row.started_at, t);
        ASSERT_OK(parse_iso_utc("2026-01-10T06:03:20Z", &t));
        ASSERT_EQ_INT(row.completed_at, t);
        assert_json_equal(row.stats, "{\"clients\":150,\"pianos\":250}");
        ASSERT_STREQ(row.triggered_by, "scheduler");
        ASSERT_NULL(row.invocation_id);
        ASSERT_NULL(row.host);
        ASSERT_EQ_INT(row.pid, 0);
        ASSERT(row.created_at > 0);

        ASSERT_OKF(store_runs_query(db, 10, "rv_alerts", &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 1);
        ASSERT_OK(store_run_read(c, &row));
        c = db_cursor_free(c);
        ASSERT_STREQ(row.message, "SendGrid: 401 « clé invalide »");
        ASSERT_STREQ(row.triggered_by_user, "marie@piano-tek.com");
        ASSERT_OK(parse_iso_utc("2026-01-10T21:00:00.5Z", &t));
        ASSERT_EQ_INT(row.started_at, t);

        ASSERT_OKF(store_runs_query(db, 10, "backup", &c), "%s", db_error(db));
        ASSERT_EQ_INT(db_cursor_next(c), 1);
        ASSERT_OK(store_run_read(c, &row));
        c = db_cursor_free(c);
        ASSERT_STREQ(row.status, "running");
        ASSERT_STREQ(row.triggered_by, "api");
        assert_json_equal(row.stats, "{}");
        ASSERT_EQ_INT(row.completed_at, 0);

        /* New statuses and the cli trigger are accepted; unknown ones are still refused. */
        char host[256], id[RUN_ID_MAX];
        host_name(host);
        usec_t now = now_realtime();
        insert(db, &(RowSpec) { .task = "backup", .started_at = now, .status = "warning", .trigger = "cli",
                                .user = "root", .host = host, .pid = getpid(), .invocation_id = "abc" }, id);
        read_row(db, id, &row);
        ASSERT_STREQ(row.status, "warning");
        ASSERT_STREQ(row.triggered_by, "cli");
        ASSERT_STREQ(row.host, host);
        ASSERT_STREQ(row.invocation_id, "abc");
        ASSERT_EQ_INT(row.pid, getpid());
        insert(db, &(RowSpec) { .task = "rv_alerts", .started_at = now + 1, .status = "skipped",
                                .trigger = "scheduler" }, id);
        assert_status(db, id, "skipped");
        ASSERT_OK(store_run_finish(db, id, "warning", "x", "{}", now + 2, 0));
        char bad[RUN_ID_MAX];
        run_id_new(bad);
        ASSERT(store_run_insert(db, &(RunRow) { .id = bad, .task_name = (char *) "backup", .started_at = now,
                                                .status = (char *) "done", .triggered_by = (char *) "cli" }) < 0);
        ASSERT(store_run_insert(db, &(RunRow) { .id = bad, .task_name = (char *) "backup", .started_at = now,
                                                .status = (char *) "running", .triggered_by = (char *) "cron" }) < 0);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'scheduler_logs'::regclass "
                                    "AND contype = 'c'"), 2);
        static const char *const new_columns[] = { "invocation_id", "host", "pid" };
        for (size_t i = 0; i < ELEMENTSOF(new_columns); i++) {
                int64_t n = -1;
                ASSERT_OK(db_query_int(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                                           "'scheduler_logs' AND table_schema = current_schema() AND column_name = $1",
                                       DB_PARAMS(DBV_TEXT_OR_NULL(new_columns[i])), &n));
                ASSERTF(n == 1, "column %s missing", new_columns[i]);
        }

        /* The old pending 'running' row is reaped like any stale daemon start. */
        ASSERT_OKF(store_run_reap(db, "backup", host, id, STORE_LIVE_JOB_UNKNOWN, now - PENDING_WINDOW, now), "%s",
                   db_error(db));
        ASSERT_OKF(store_runs_query(db, 10, "backup", &c), "%s", db_error(db));
        int running = 0;
        while (db_cursor_next(c) > 0) {
                ASSERT_OK(store_run_read(c, &row));
                running += streq(row.status, "running");
        }
        c = db_cursor_free(c);
        ASSERT_EQ_INT(running, 0);

        /* Re-opening applies nothing and keeps every row. */
        ASSERT_EQ_INT(migrate_apply(db), 0);
        ASSERT_EQ_INT(query_int(db, "SELECT count(*) FROM scheduler_logs"), 5);
        run_row_clear(&row);
        test_store_done(&s);
}

/* A probe of task_lock_held() (the daemon's ListTasks, `status`) takes the lock for an instant: a
 * runner's take that meets it must wait it out, not conclude that a run holds the lock (that
 * would record a timer's run as skipped). A child probes without pause while we take and release
 * the lock; not one take may fail. Without the patience in task_lock_take() this fails within a
 * few thousand rounds. */
TEST(lock_take_waits_out_a_probe) {
        TestStore s;
        test_store_init(&s);
        const Task *t = task_get(TASK_BACKUP);
        int fd = -1;
        ASSERT_OK(task_lock_take(&s.config, t, &fd));
        (void) close(fd);
        pid_t prober = fork();
        ASSERT(prober >= 0);
        if (prober == 0) {
                for (;;)
                        (void) task_lock_held(&s.config, t);
        }
        for (int i = 0; i < 5000; i++) {
                int r = task_lock_take(&s.config, t, &fd);
                if (r < 0)
                        (void) kill(prober, SIGKILL);
                ASSERT_OKF(r, "take %d met the probe and gave up", i);
                (void) close(fd);
        }
        /* A lock really held is still reported busy (after the patience). */
        int held = -1;
        ASSERT_OK(task_lock_take(&s.config, t, &held));
        (void) kill(prober, SIGKILL);
        (void) waitpid(prober, NULL, 0);
        pid_t other = fork();
        ASSERT(other >= 0);
        if (other == 0)
                _exit(task_lock_take(&s.config, t, &fd) == -EBUSY ? 0 : 1);
        int status = 0;
        ASSERT(waitpid(other, &status, 0) == other);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        (void) close(held);
        test_store_done(&s);
}

static const TestCase common_cases[] = {
        TEST_CASE(migrations), TEST_CASE(ledger_outbox_rows_become_queued), TEST_CASE(concurrent_first_open), TEST_CASE(run_ids), TEST_CASE(adopt), TEST_CASE(reap_dead_jobs),
        TEST_CASE(adopt_race), TEST_CASE(finish), TEST_CASE(reap),
        TEST_CASE(lease), TEST_CASE(lock_take_waits_out_a_probe), TEST_CASE(scheduled_success_between),
        TEST_CASE(runs_query), TEST_CASE(round_trip), TEST_CASE(open_failure_message), TEST_CASE(postgresql_unreachable),
};

static bool wanted(const char *name, int argc, char **argv) {
        if (argc <= 1)
                return true;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], name))
                        return true;
        return false;
}

static unsigned run_cases(const TestCase *cases, size_t n, int argc, char **argv) {
        unsigned ran = 0;
        for (size_t i = 0; i < n; i++) {
                if (!wanted(cases[i].name, argc, argv))
                        continue;
                cases[i].func();
                printf("ok - %s/%s\n", T.name, cases[i].name);
                fflush(stdout);
                ran++;
        }
        return ran;
}

int main(int argc, char **argv) {
        tz_init();
        umask(0077);
        /* Nothing from the caller's environment may pick another store. */
        static const char *const clear[] = { "STATE_DIRECTORY", "DATABASE_URL", "CREDENTIALS_DIRECTORY", "BACKUP_DIR",
                                             "BACKUP_SQLITE_PATH", "BACKUP_KEEP", "INVOCATION_ID" };
        for (size_t i = 0; i < ELEMENTSOF(clear); i++)
                unsetenv(clear[i]);
        T.tmp_root = test_mkdtemp("store");

        unsigned ran = 0;
        T.backend = DB_SQLITE;
        T.name = "sqlite";
        ran += run_cases(common_cases, ELEMENTSOF(common_cases), argc, argv);

        const char *url;
        TestPgAvailability pg = test_pg_url(&url);
        int ret = 0;
        if (pg == TEST_PG_MISSING) {
                /* Asked to test PostgreSQL inside the sandbox, and there is none. */
                printf("SKIP: TEST_DATABASE_URL_FROM_SBX=1 but SBX_PG_URL is not set (SBX_NO_PG=1?)\n");
                ret = EXIT_TEST_SKIP;
        } else if (pg == TEST_PG_NONE)
                test_skip_part("postgresql", "TEST_DATABASE_URL is not set");
        else {
                T.backend = DB_POSTGRESQL;
                T.name = "postgresql";
                T.admin_url = xstrdup(url);
                ran += run_cases(common_cases, ELEMENTSOF(common_cases), argc, argv);
                static const TestCase pg_cases[] = { TEST_CASE(postgresql_session), TEST_CASE(legacy_table_migration) };
                ran += run_cases(pg_cases, ELEMENTSOF(pg_cases), argc, argv);
                free(T.admin_url);
        }
        test_rm_rf(T.tmp_root);
        free(T.tmp_root);
        if (ran == 0 && ret == 0) {
                fprintf(stderr, "no test matched\n");
                return 1;
        }
        printf("1..%u\n", ran);
        return ret;
}
