/* SPDX-License-Identifier: MIT */
/* test-bus-api.c — the daemon's vtable over a socketpair: no bus daemon, no systemd, no
 * gazelle-schedulerd. The server end runs bus_api_register() on a Context with a temporary
 * SQLite store in its own thread (its handlers make synchronous calls to "systemd", which is
 * the client end here: it answers them UnknownObject, like a manager without our units).
 * Checks argument validation, error names, GetLogs limits and the keys of ListTasks. */
#include <pthread.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-api.h"
#include "bus-errors.h"
#include "utf8.h"
#include "bus-watch.h"
#include "daemon.h"
#include "test.h"

typedef struct Server {
        Context c;
        pthread_t thread;
        char *dir;
} Server;

typedef struct Client {
        sd_bus *bus;
} Client;

static void *server_main(void *userdata) {
        Server *s = userdata;
        int r = sd_event_loop(s->c.event);
        if (r < 0)
                fprintf(stderr, "server event loop: %s\n", strerror(-r));
        return NULL;
}

/* A server on one end of a socketpair, a client on the other. sqlite_path overrides the store
 * (NULL: a fresh one under a temporary state directory). */
static void start(Server *s, Client *cl, const char *sqlite_path) {
        int fds[2];
        sd_id128_t id;

        *s = (Server) { .dir = test_mkdtemp("bus-api") };
        ASSERT(setenv("STATE_DIRECTORY", s->dir, 1) == 0);
        ASSERT(setenv("XDG_CONFIG_HOME", s->dir, 1) == 0); /* no settings file but GAZELLE_CONFIG's */
        (void) unsetenv("DATABASE_URL");
        (void) unsetenv("GAZELLE_ADMIN_GROUP");
        (void) unsetenv("REPORT_SPREADSHEET_ID");
        ASSERTF(config_load(&s->c.config, BUS_USER) >= 0, "%s", s->c.config.error);
        if (sqlite_path) {
                free(s->c.config.sqlite_path);
                s->c.config.sqlite_path = strdup(sqlite_path);
        }
        snprintf(s->c.host, sizeof s->c.host, "test-host");

        ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        ASSERT_OK(sd_id128_randomize(&id));
        ASSERT_OK(sd_bus_new(&s->c.bus));
        ASSERT_OK(sd_bus_set_fd(s->c.bus, fds[0], fds[0]));
        ASSERT_OK(sd_bus_set_server(s->c.bus, 1, id));
        ASSERT_OK(sd_bus_start(s->c.bus));
        ASSERT_OK(bus_api_register(&s->c));
        ASSERT_OK(sd_event_new(&s->c.event));
        ASSERT_OK(sd_bus_attach_event(s->c.bus, s->c.event, SD_EVENT_PRIORITY_NORMAL));
        /* The client hanging up ends the server's loop: the only way to stop it from here. */
        ASSERT_OK(sd_bus_set_exit_on_disconnect(s->c.bus, 1));

        *cl = (Client) {};
        ASSERT_OK(sd_bus_new(&cl->bus));
        ASSERT_OK(sd_bus_set_fd(cl->bus, fds[1], fds[1]));
        ASSERT_OK(sd_bus_start(cl->bus));

        ASSERT(pthread_create(&s->thread, NULL, server_main, s) == 0);
}

static void stop(Server *s, Client *cl) {
        cl->bus = sd_bus_flush_close_unref(cl->bus);
        ASSERT(pthread_join(s->thread, NULL) == 0);
        context_clear(&s->c);
        test_rm_rf(s->dir);
        free(s->dir);
}

typedef struct Pending {
        bool done;
        sd_bus_message *reply;
} Pending;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Pending *p = userdata;
        p->reply = sd_bus_message_ref(m);
        p->done = true;
        return 0;
}

/* Calls METHOD and keeps processing the client's end while waiting, so that the server's own
 * calls to "systemd" get their UnknownObject answer instead of hanging. Returns the reply
 * (a method return or an error message). */
static sd_bus_message *callv(Client *cl, uint64_t timeout, const char *method, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Pending p = {};

        ASSERT_OK(sd_bus_message_new_method_call(cl->bus, &m, BUS_NAME, BUS_PATH, BUS_INTERFACE, method));
        ASSERT_OK(sd_bus_message_appendv(m, types, ap));
        ASSERT_OK(sd_bus_call_async(cl->bus, NULL, m, on_reply, &p, timeout));
        uint64_t deadline = now_monotonic() + timeout;
        while (!p.done) {
                int r = sd_bus_process(cl->bus, NULL);
                ASSERT_OK(r);
                if (r == 0)
                        ASSERT_OK(sd_bus_wait(cl->bus, 100 * USEC_PER_MSEC));
                ASSERTF(now_monotonic() < deadline, "no answer to %s within %" PRIu64 " ms", method,
                        timeout / USEC_PER_MSEC);
        }
        return p.reply;
}

static sd_bus_message *call(Client *cl, const char *method, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        sd_bus_message *reply = callv(cl, 30 * USEC_PER_SEC, method, types, ap);
        va_end(ap);
        return reply;
}

/* An error path answers at once: 2 s, not the 25 s of a caller's default timeout, is the
 * proof that the reply was sent (a text sd-bus refuses is never sent). */
static sd_bus_message *call_quick(Client *cl, const char *method, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        sd_bus_message *reply = callv(cl, 2 * USEC_PER_SEC, method, types, ap);
        va_end(ap);
        return reply;
}

static void assert_error(sd_bus_message *reply, const char *name, const char *in_message) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        ASSERTF(e, "expected %s, got a method return", name);
        ASSERT_STREQ(e->name, name);
        if (in_message)
                ASSERT_CONTAINS(e->message, in_message);
}

/* Number of a{sv} dictionaries in an aa{sv} reply. */
static unsigned count_rows(sd_bus_message *reply) {
        unsigned n = 0;
        ASSERTF(!sd_bus_message_get_error(reply), "%s", sd_bus_message_get_error(reply)->message);
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "a{sv}"));
        while (sd_bus_message_skip(reply, "a{sv}") > 0)
                n++;
        ASSERT_OK(sd_bus_message_exit_container(reply));
        ASSERT_OK(sd_bus_message_rewind(reply, true));
        return n;
}

/* The string value of KEY in the current a{sv}, or NULL; the dictionary is left entered. */
static char *dict_string(sd_bus_message *reply, const char *key, char **keys_seen) {
        char *found = NULL;
        const char *k;
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "s", &k));
                if (keys_seen) {
                        char *old = *keys_seen;
                        ASSERT(asprintf(keys_seen, "%s%s ", old ? old : " ", k) >= 0);
                        free(old);
                }
                const char *contents;
                ASSERT_OK(sd_bus_message_peek_type(reply, NULL, &contents));
                if (strcmp(k, key) == 0 && strcmp(contents, "s") == 0) {
                        const char *v;
                        ASSERT_OK(sd_bus_message_enter_container(reply, 'v', "s"));
                        ASSERT_OK(sd_bus_message_read(reply, "s", &v));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                        found = strdup(v);
                } else
                        ASSERT_OK(sd_bus_message_skip(reply, "v"));
                ASSERT_OK(sd_bus_message_exit_container(reply));
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
        return found;
}

/* The uint32 value of key in the next a{sv}; false when absent. */
static bool dict_uint(sd_bus_message *reply, const char *key, uint32_t *ret) {
        bool found = false;
        const char *k;
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "{sv}"));
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                ASSERT_OK(sd_bus_message_read(reply, "s", &k));
                const char *contents;
                ASSERT_OK(sd_bus_message_peek_type(reply, NULL, &contents));
                if (strcmp(k, key) == 0) {
                        ASSERTF(strcmp(contents, "u") == 0, "%s has type %s, expected u", key, contents);
                        ASSERT_OK(sd_bus_message_read(reply, "v", "u", ret));
                        found = true;
                } else
                        ASSERT_OK(sd_bus_message_skip(reply, "v"));
                ASSERT_OK(sd_bus_message_exit_container(reply));
        }
        ASSERT_OK(sd_bus_message_exit_container(reply));
        return found;
}

static bool is_root(void) {
        return geteuid() == 0;
}

TEST(run_task_unknown_task) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        const char *bad[] = { "nosuchtask", "", "Backup", "backup ", "../backup", "gazelle-backup.service" };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "RunTask", "ss", bad[i], "");
                assert_error(r, BUS_ERROR_UNKNOWN_TASK, "Valid tasks:");
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "RunTask", "ss", "nosuchtask", "");
        assert_error(r, BUS_ERROR_UNKNOWN_TASK, "'nosuchtask'");
        stop(&s, &cl);
}

TEST(run_task_bad_email) {
        Server s;
        Client cl;
        char long_local[300];
        memset(long_local, 'a', 250);
        strcpy(long_local + 250, "@x.ca"); /* 255 bytes: one too many */

        start(&s, &cl, NULL);
        const char *bad[] = { "not-an-email", "a@b", "@piano-tek.com", "tech@", "a b@x.com", "a@@x.com",
                              "a@x.", "a@.com", "tech@x.com\n", "<tech@x.com>", "tech@x.com;rm", long_local };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "RunTask", "ss", "backup", bad[i]);
                assert_error(r, SD_BUS_ERROR_INVALID_ARGS, "Invalid email address");
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "RunTask", "ss", "sync", "not-an-email");
        assert_error(r, SD_BUS_ERROR_INVALID_ARGS, "'not-an-email'");
        stop(&s, &cl);
}

/* Multi-byte characters at every cut of the callers' texts in error replies (task name 64
 * bytes, email 80): the reply comes at once, valid UTF-8, the character left out whole. */
TEST(multibyte_at_the_cut) {
        Server s;
        Client cl;
        const char *chars[] = { "é", "€", "😀" };
        start(&s, &cl, NULL);
        for (size_t c = 0; c < sizeof chars / sizeof *chars; c++)
                for (size_t pad = 58; pad <= 66; pad++) {
                        char name[128], email[160];
                        memset(name, 'a', pad);
                        snprintf(name + pad, sizeof name - pad, "%s%s", chars[c], chars[c]);
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *a = call_quick(&cl, "RunTask", "ss", name, "");
                        assert_error(a, BUS_ERROR_UNKNOWN_TASK, "Valid tasks:");
                        ASSERT(utf8_is_valid(sd_bus_message_get_error(a)->message));
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *b = call_quick(&cl, "GetTaskLogs", "su", name, 5);
                        assert_error(b, BUS_ERROR_UNKNOWN_TASK, "Valid tasks:");
                        ASSERT(utf8_is_valid(sd_bus_message_get_error(b)->message));

                        memset(email, 'b', pad + 16);
                        snprintf(email + pad + 16, sizeof email - pad - 16, "%s%s@x.ca", chars[c], chars[c]);
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *d = call_quick(&cl, "RunTask", "ss", "backup", email);
                        assert_error(d, SD_BUS_ERROR_INVALID_ARGS, "Invalid email address");
                        ASSERT(utf8_is_valid(sd_bus_message_get_error(d)->message));
                }
        stop(&s, &cl);
}

/* A valid call passes validation and authorization (root) or is refused (anyone else); as root
 * it reaches StartUnit, which the client end refuses: SystemdUnavailable, and the row that was
 * written is closed as error rather than left running. */
TEST(run_task_authorized_or_denied) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        const char *ok_emails[] = { "tech@piano-tek.com", "" };
        const char *tasks[] = { "backup", "rapport" };
        for (size_t i = 0; i < 2; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "RunTask", "ss", tasks[i], ok_emails[i]);
                if (!is_root()) {
                        assert_error(r, SD_BUS_ERROR_ACCESS_DENIED, "gazelle-admin");
                        continue;
                }
                assert_error(r, BUS_ERROR_SYSTEMD_UNAVAILABLE, "systemd refused to start");
        }
        if (is_root()) {
                Db *db = NULL;
                int64_t n = -1;
                ASSERT_OK(store_open(&s.c.config, &db));
                ASSERT_OK(db_query_int(db, "SELECT count(*) FROM scheduler_logs WHERE status = 'error' AND "
                                       "caller_uid = 0 AND caller_name = 'root' AND "
                                       "((task_name = 'backup' AND triggered_by = 'manual' AND "
                                       "triggered_by_user = 'tech@piano-tek.com') OR "
                                       "(task_name = 'rapport_timeline' AND triggered_by = 'api' AND "
                                       "triggered_by_user = 'root'))", NULL, 0, &n));
                ASSERT_EQ_INT(n, 2);
                ASSERT_OK(db_query_int(db, "SELECT count(*) FROM scheduler_logs WHERE status = 'running'", NULL, 0, &n));
                ASSERT_EQ_INT(n, 0);
                db_close(db);
        } else
                test_skip_part("run_task_reaches_start_unit", "not root: only the refusal is checked");
        stop(&s, &cl);
}

/* GetLogs carries the real caller (caller_uid as uint32, caller_name) beside the claimed
 * triggered_by_user, and leaves both out for a timer's run. */
TEST(get_logs_caller) {
        Server s;
        Client cl;
        Db *db = NULL;
        start(&s, &cl, NULL);
        ASSERT_OK(store_open(&s.c.config, &db));
        char a[RUN_ID_MAX], b[RUN_ID_MAX];
        run_id_new(a);
        run_id_new(b);
        RunRow manual = {
                .id = a, .task_name = (char *) "backup", .task_label = (char *) "Sauvegarde",
                .started_at = 1700000060 * USEC_PER_SEC, .status = (char *) "success",
                .triggered_by = (char *) "manual", .triggered_by_user = (char *) "boss@piano-tek.com",
                .has_caller_uid = true, .caller_uid = 4000000000u, .caller_name = (char *) "alice",
        };
        RunRow timer = {
                .id = b, .task_name = (char *) "backup", .task_label = (char *) "Sauvegarde",
                .started_at = 1700000000 * USEC_PER_SEC, .status = (char *) "success",
                .triggered_by = (char *) "scheduler",
        };
        ASSERT_OKF(store_run_insert(db, &manual), "%s", db_error(db));
        ASSERT_OKF(store_run_insert(db, &timer), "%s", db_error(db));
        db_close(db);

        uint32_t uid = 0;
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", 2);
                ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
                ASSERT(dict_uint(r, "caller_uid", &uid));
                ASSERT_EQ_INT(uid, 4000000000u);
                ASSERT(!dict_uint(r, "caller_uid", &uid));
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", 2);
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *keys = NULL;
        _cleanup_free_ char *name = dict_string(r, "caller_name", NULL);
        _cleanup_free_ char *none = dict_string(r, "caller_name", &keys);
        ASSERT_STREQ(name, "alice");
        ASSERT_NULL(none);
        ASSERTF(!strstr(keys, " caller_uid "), "timer run with a caller: %s", keys);
        stop(&s, &cl);
}

static void insert_rows(const Config *config, unsigned n) {
        Db *db = NULL;
        ASSERT_OK(store_open(config, &db));
        ASSERT_OKF(db_begin(db), "%s", db_error(db));
        for (unsigned i = 0; i < n; i++) {
                char id[RUN_ID_MAX];
                run_id_new(id);
                usec_t t = 1700000000 * USEC_PER_SEC + (usec_t) i * 60 * USEC_PER_SEC;
                RunRow row = {
                        .id = id, .task_name = (char *) "sync_gazelle", .task_label = (char *) "Synchronisation",
                        .started_at = t, .status = (char *) "running", .triggered_by = (char *) "scheduler",
                        .host = (char *) "test-host",
                };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
        }
        ASSERT_OKF(db_commit(db), "%s", db_error(db));
        db_close(db);
}

TEST(get_logs_limits) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        {
                /* An empty store answers an empty array, not an error. */
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", 0);
                ASSERT_EQ_INT(count_rows(r), 0);
        }
        insert_rows(&s.c.config, 1005);
        struct { uint32_t limit; unsigned expected; } cases[] = {
                { 0, 20 }, { 1, 1 }, { 2, 2 }, { 20, 20 }, { 999, 999 }, { 1000, 1000 }, { 1001, 1000 },
                { 4294967295u, 1000 },
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", cases[i].limit);
                unsigned n = count_rows(r);
                ASSERTF(n == cases[i].expected, "GetLogs(%u): %u rows, expected %u", cases[i].limit, n,
                        cases[i].expected);
        }

        /* Newest first; keys are column names; NULL columns (completed_at…) are left out. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", 2);
        _cleanup_free_ char *keys = NULL;
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *first = dict_string(r, "started_at", &keys);
        _cleanup_free_ char *second = dict_string(r, "started_at", NULL);
        ASSERT(first && second);
        ASSERTF(strcmp(first, second) > 0, "%s should be newer than %s", first, second);
        /* RFC 3339 with an offset: 2023-11-…T…-05:00 (the local zone) or Z. */
        ASSERTF(strlen(first) >= 20 && first[10] == 'T' && (strchr(first + 19, '+') || strchr(first + 19, '-') ||
                                                            first[strlen(first) - 1] == 'Z'), "%s", first);
        const char *want[] = { " id ", " task_name ", " task_label ", " status ", " started_at ", " created_at ",
                               " triggered_by ", " host ", " stats " };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
                ASSERT_CONTAINS(keys, want[i]);
        const char *absent[] = { " completed_at ", " duration_seconds ", " message ", " triggered_by_user ",
                                 " invocation_id " };
        for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
                ASSERTF(!strstr(keys, absent[i]), "NULL column%s present: %s", absent[i], keys);
        stop(&s, &cl);
}

/* Manual runs carry the technician's email; GetLogs adds their display name when the settings
 * know the address (case-insensitively), and nothing otherwise. */
TEST(get_logs_display_name) {
        Server s;
        Client cl;
        Db *db = NULL;
        _cleanup_free_ char *dir = test_mkdtemp("bus-api-settings");
        _cleanup_free_ char *path = NULL;
        ASSERT(asprintf(&path, "%s/config.json", dir) >= 0);
        FILE *f = fopen(path, "w");
        ASSERT(f);
        fputs("{\"technicians\": [{\"id\": \"usr_nick\", \"full_name\": \"Nicolas Lessard\", "
              "\"display_name\": \"Nick\", \"email\": \"Nicolas@Piano-Tek.com\"}]}\n", f);
        ASSERT(fclose(f) == 0);
        ASSERT(setenv("GAZELLE_CONFIG", path, 1) == 0);
        start(&s, &cl, NULL);
        ASSERT(unsetenv("GAZELLE_CONFIG") == 0);

        ASSERT_OK(store_open(&s.c.config, &db));
        const char *users[] = { "nicolas@piano-tek.com", "someone@piano-tek.com", "root" };
        const char *triggers[] = { "manual", "manual", "api" };
        for (int i = 0; i < 3; i++) {
                char id[RUN_ID_MAX];
                run_id_new(id);
                RunRow row = {
                        .id = id, .task_name = (char *) "backup", .task_label = (char *) "Sauvegarde",
                        .started_at = (1700000000 + i * 60) * USEC_PER_SEC, .status = (char *) "success",
                        .triggered_by = (char *) triggers[i], .triggered_by_user = (char *) users[i],
                };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
        }
        db_close(db);

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "GetLogs", "u", 3);
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *root = dict_string(r, "triggered_by_name", NULL);       /* newest: api, root */
        _cleanup_free_ char *someone = dict_string(r, "triggered_by_name", NULL);    /* unknown address */
        _cleanup_free_ char *nick = dict_string(r, "triggered_by_name", NULL);       /* oldest: Nick */
        ASSERT_NULL(root);
        ASSERT_NULL(someone);
        ASSERT_STREQ(nick, "Nick");
        stop(&s, &cl);
        test_rm_rf(dir);
}

TEST(list_tasks_keys) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "ListTasks", "");
        ASSERT_EQ_INT(count_rows(r), 4);
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *keys = NULL;
        _cleanup_free_ char *name = dict_string(r, "name", &keys);
        ASSERT_STREQ(name, "sync_gazelle");
        const char *want[] = { " name ", " label ", " unit ", " schedule ", " running " };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
                ASSERT_CONTAINS(keys, want[i]);
        /* No timer reachable, no run yet: next_run and last_* are left out, not empty. */
        ASSERTF(!strstr(keys, " next_run ") && !strstr(keys, " last_status "), "%s", keys);
        stop(&s, &cl);
}

/* After runs: the last_* keys describe the newest run and the newest success. */
TEST(list_tasks_last_run) {
        Server s;
        Client cl;
        Db *db = NULL;
        start(&s, &cl, NULL);
        ASSERT_OK(store_open(&s.c.config, &db));
        const char *ids[] = { "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002" };
        const char *statuses[] = { "success", "error" };
        for (int i = 0; i < 2; i++) {
                RunRow row = {
                        .id = (char *) ids[i], .task_name = (char *) "sync_gazelle", .task_label = (char *) "Sync",
                        .started_at = (1700000000 + i * 3600) * USEC_PER_SEC, .status = (char *) statuses[i],
                        .triggered_by = (char *) "scheduler",
                };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
        }
        db_close(db);

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call(&cl, "ListTasks", "");
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *keys = NULL;
        _cleanup_free_ char *id = dict_string(r, "last_run_id", &keys);
        ASSERT_STREQ(id, ids[1]);
        ASSERT_OK(sd_bus_message_rewind(r, true));
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *status = dict_string(r, "last_status", NULL);
        ASSERT_STREQ(status, "error");
        ASSERT_OK(sd_bus_message_rewind(r, true));
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *started = dict_string(r, "last_started_at", NULL);
        ASSERT_OK(sd_bus_message_rewind(r, true));
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *success = dict_string(r, "last_success_at", NULL);
        ASSERT(started && success);
        ASSERTF(strcmp(started, success) > 0, "last start %s should be an hour after last success %s", started, success);
        const char *want[] = { " name ", " label ", " unit ", " schedule ", " last_status ", " last_run_id ",
                               " last_started_at ", " last_success_at ", " running " };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
                ASSERT_CONTAINS(keys, want[i]);
        stop(&s, &cl);
}

/* The run ids GetLogs answers, newest first, space-separated (owned). */
static char *daemon_history(Client *cl) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call_quick(cl, "GetLogs", "u", 100);
        char *ids = strdup("");
        unsigned n = count_rows(r);
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *id = dict_string(r, "id", NULL);
                char *more;
                ASSERT(asprintf(&more, "%s%s ", ids, id ? id : "?") >= 0);
                free(ids);
                ids = more;
        }
        return ids;
}

/* The same read from the store's path, as the CLI does. */
static char *path_history(const Config *config) {
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_(db_cursor_freep) DbCursor *cur = NULL;
        RunRow row = { .duration_seconds = -1 };
        char *ids = strdup("");
        ASSERT_OK(store_open(config, &db));
        ASSERT_OK(store_runs_query(db, 100, NULL, &cur));
        int r;
        while ((r = db_cursor_next(cur)) > 0) {
                ASSERT_OK(store_run_read(cur, &row));
                char *more;
                ASSERT(asprintf(&more, "%s%s ", ids, row.id) >= 0);
                free(ids);
                ids = more;
        }
        ASSERT_OK(r);
        run_row_clear(&row);
        return ids;
}

static void insert_runs(const Config *config, const char *path, int first, int n) {
        Config c = *config;
        c.sqlite_path = (char *) path;
        Db *db = NULL;
        ASSERT_OK(store_open(&c, &db));
        for (int i = first; i < first + n; i++) {
                char id[RUN_ID_MAX];
                snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
                RunRow row = { .id = id, .task_name = (char *) "backup", .task_label = (char *) "Backup",
                               .started_at = (1700000000 + i * 60) * USEC_PER_SEC, .status = (char *) "success",
                               .triggered_by = (char *) "scheduler" };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
        }
        db_close(db);
}

/* The store file replaced (as a restore or an administrator's mv does) or deleted under the
 * daemon: its next answer comes from the file the path names, the same history the CLI reads. */
TEST(store_replaced) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        const char *path = s.c.config.sqlite_path;
        insert_runs(&s.c.config, path, 1, 3);
        _cleanup_free_ char *before = daemon_history(&cl), *before_cli = path_history(&s.c.config);
        ASSERT_STREQ(before, before_cli);
        ASSERT_CONTAINS(before, "000000000003");

        /* Another store, complete and closed, renamed over the path. */
        _cleanup_free_ char *other = NULL;
        ASSERT(asprintf(&other, "%s/other.sqlite", s.dir) >= 0);
        insert_runs(&s.c.config, other, 10, 2);
        ASSERT(rename(other, path) == 0);
        _cleanup_free_ char *after = daemon_history(&cl), *after_cli = path_history(&s.c.config);
        ASSERT_STREQ(after, after_cli);
        ASSERT_CONTAINS(after, "000000000011");
        ASSERT(!strstr(after, "000000000003"));

        /* Deleted: a fresh, empty store at the path, for the daemon as for the CLI. */
        ASSERT(unlink(path) == 0);
        _cleanup_free_ char *gone = daemon_history(&cl), *gone_cli = path_history(&s.c.config);
        ASSERT_STREQ(gone, "");
        ASSERT_STREQ(gone, gone_cli);
        stop(&s, &cl);
}

/* A row stored before the redaction step existed, with a URL password and a loaded secret in
 * its message: GetLogs masks both on the way out. */
TEST(old_row_masked) {
        Server s;
        Client cl;
        /* A loaded key with the outbox as transport: valid without a sender (config.c). */
        _cleanup_free_ char *cdir = test_mkdtemp("bus-api-config");
        _cleanup_free_ char *cpath = xasprintf("%s/config.json", cdir);
        FILE *f = fopen(cpath, "we");
        ASSERT(f);
        fputs("{\"mail\": {\"transport\": \"outbox\"}}", f);
        fclose(f);
        ASSERT(setenv("GAZELLE_CONFIG", cpath, 1) == 0);
        ASSERT(setenv("SENDGRID_API_KEY", "SG.oldLeakedKey42", 1) == 0);
        start(&s, &cl, NULL);
        ASSERT(unsetenv("SENDGRID_API_KEY") == 0);
        ASSERT(unsetenv("GAZELLE_CONFIG") == 0);
        test_rm_rf(cdir);
        insert_runs(&s.c.config, s.c.config.sqlite_path, 1, 1);
        Db *db = NULL;
        ASSERT_OK(db_open_sqlite(s.c.config.sqlite_path, &db)); /* no secrets known: stored as is */
        ASSERT_OK(db_exec(db, "UPDATE scheduler_logs SET message = $1, stats = $2",
                          DB_PARAMS(DBV_TEXT_OR_NULL("smtp://u:hunter2hunter2@mail refused key SG.oldLeakedKey42"),
                                    DBV_TEXT_OR_NULL("{\"errors\":[\"SG.oldLeakedKey42\"]}"))));
        db_close(db);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *r = call_quick(&cl, "GetLogs", "u", 5);
        ASSERT_EQ_INT(count_rows(r), 1);
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *message = dict_string(r, "message", NULL);
        ASSERT_OK(sd_bus_message_rewind(r, true));
        ASSERT_OK(sd_bus_message_enter_container(r, 'a', "a{sv}"));
        _cleanup_free_ char *stats = dict_string(r, "stats", NULL);
        ASSERT(message && stats);
        ASSERTF(!strstr(message, "hunter2") && !strstr(message, "oldLeaked"), "%s", message);
        ASSERTF(!strstr(stats, "oldLeaked"), "%s", stats);
        stop(&s, &cl);
}

/* The store cannot be opened (its directory is a regular file): every method answers
 * StoreUnavailable, and the daemon keeps serving. */
TEST(store_unavailable) {
        Server s;
        Client cl;
        _cleanup_free_ char *dir = test_mkdtemp("bus-api-file");
        _cleanup_free_ char *file = NULL, *path = NULL;
        ASSERT(asprintf(&file, "%s/not-a-dir", dir) >= 0);
        ASSERT(asprintf(&path, "%s/gazelle-scheduler.sqlite", file) >= 0);
        FILE *f = fopen(file, "w");
        ASSERT(f);
        fclose(f);

        start(&s, &cl, path);
        for (int round = 0; round < 2; round++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *a = call(&cl, "GetLogs", "u", 20);
                assert_error(a, BUS_ERROR_STORE_UNAVAILABLE, "store");
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *b = call(&cl, "ListTasks", "");
                assert_error(b, BUS_ERROR_STORE_UNAVAILABLE, NULL);
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *c = call(&cl, "RunTask", "ss", "backup", "");
                assert_error(c, is_root() ? BUS_ERROR_STORE_UNAVAILABLE : SD_BUS_ERROR_ACCESS_DENIED, NULL);
        }
        /* Validation still comes first. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *d = call(&cl, "RunTask", "ss", "nope", "");
        assert_error(d, BUS_ERROR_UNKNOWN_TASK, NULL);
        stop(&s, &cl);
        test_rm_rf(dir);
}

/* GetTaskLogs: one task by name or alias, "" for all; an unknown task is named in the error. */
TEST(get_task_logs) {
        Server s;
        Client cl;
        Db *db = NULL;
        start(&s, &cl, NULL);
        ASSERT_OK(store_open(&s.c.config, &db));
        const char *tasks[] = { "backup", "sync_gazelle", "backup" };
        for (int i = 0; i < 3; i++) {
                char id[RUN_ID_MAX];
                run_id_new(id);
                RunRow row = {
                        .id = id, .task_name = (char *) tasks[i], .task_label = (char *) tasks[i],
                        .started_at = (1700000000 + i * 60) * USEC_PER_SEC, .status = (char *) "success",
                        .triggered_by = (char *) "scheduler",
                };
                ASSERT_OKF(store_run_insert(db, &row), "%s", db_error(db));
        }
        db_close(db);

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *a = call(&cl, "GetTaskLogs", "su", "backup", 0);
        ASSERT_EQ_INT(count_rows(a), 2);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *b = call(&cl, "GetTaskLogs", "su", "sync", 0);
        ASSERT_EQ_INT(count_rows(b), 1);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *c = call(&cl, "GetTaskLogs", "su", "", 2);
        ASSERT_EQ_INT(count_rows(c), 2);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *d = call(&cl, "GetTaskLogs", "su", "nosuchtask", 1);
        assert_error(d, BUS_ERROR_UNKNOWN_TASK, "'nosuchtask'");
        stop(&s, &cl);
}

/* A direct connection has no bus to track subscribers on: Subscribe() says so instead of
 * pretending, and Unsubscribe() finds nothing to undo. */
TEST(subscribe_direct_connection) {
        Server s;
        Client cl;
        start(&s, &cl, NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *a = call(&cl, "Subscribe", "");
        assert_error(a, SD_BUS_ERROR_NOT_SUPPORTED, "message bus");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *b = call(&cl, "Unsubscribe", "");
        assert_error(b, BUS_ERROR_NOT_SUBSCRIBED, "Subscribe()");
        ASSERT(!context_has_subscribers(&s.c));
        stop(&s, &cl);
}

/* Clients see the named errors' errno equivalents through the shared map. */
TEST(error_map) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        ASSERT_OK(sd_bus_error_add_map(gazelle_bus_errors));
        sd_bus_error_set(&e, BUS_ERROR_ALREADY_RUNNING, "x");
        ASSERT_EQ_INT(sd_bus_error_get_errno(&e), EBUSY);
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, BUS_ERROR_UNKNOWN_TASK, "x");
        ASSERT_EQ_INT(sd_bus_error_get_errno(&e), ENOENT);
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, BUS_ERROR_STORE_UNAVAILABLE, "x");
        ASSERT_EQ_INT(sd_bus_error_get_errno(&e), EHOSTDOWN);
}

int main(int argc, char **argv) {
        (void) unsetenv("GAZELLE_CONFIG"); /* only get_logs_display_name sets one */
        static const TestCase cases[] = {
                TEST_CASE(run_task_unknown_task),
                TEST_CASE(run_task_bad_email),
                TEST_CASE(multibyte_at_the_cut),
                TEST_CASE(run_task_authorized_or_denied),
                TEST_CASE(get_logs_limits), TEST_CASE(get_logs_caller),
                TEST_CASE(get_logs_display_name),
                TEST_CASE(list_tasks_keys),
                TEST_CASE(list_tasks_last_run),
                TEST_CASE(store_unavailable),
                TEST_CASE(store_replaced),
                TEST_CASE(old_row_masked),
                TEST_CASE(get_task_logs),
                TEST_CASE(subscribe_direct_connection),
                TEST_CASE(error_map),
        };
        return TEST_MAIN(cases, argc, argv);
}
