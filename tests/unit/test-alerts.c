/* SPDX-License-Identifier: MIT */
/* test-alerts.c — Sync RV & Alertes through the runner, as the unit runs it, on a real store:
 * Montréal day bounds on DST days, the day's refresh from the fake Gazelle under both readings of
 * its date filters (UTC or Montréal dates) at the day's edges, routing (known, alias, no email, unknown →
 * fallback), every exclusion, one email per technician parsed back by Python's email package,
 * a second run sends nothing, a moved appointment is alerted anew, a crash after the provider's
 * acceptance gives `uncertain` (not a duplicate), a provider outage ends `error` with nothing
 * marked sent and the next run sends, 4xx is not retried, 429 is, SMTP with AUTH, a late
 * catch-up is skipped. Fakes: tests/fakes/gazelle.py, sendgrid.py and smtp_sink.py on loopback. With
 * TEST_DATABASE_URL (or SBX_PG_URL inside tests/sandbox.sh) the store is PostgreSQL. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "alert-ledger.h"
#include "alerts.h"
#include "config.h"
#include "db.h"
#include "mail.h"
#include "runner.h"
#include "task-run.h"
#include "store.h"
#include "tasks.h"
#include "test-pg.h"
#include "test-env.h"
#include "test.h"
#include "timeutil.h"

#define NICK "usr_HcCiFk7o0vZ9xAI0"
#define JP "usr_ReUSmIJmBF86ilY1"
#define MARGOT "usr_bbt59aCUqUaDWA8n"
#define UNKNOWN "usr_ghost0000000001"
#define UQAM "cli_sos6RK8t4htOApiM"

static char *tmp_root;
static unsigned counter;
static const char *pg_admin_url;

typedef struct Env {
        Config config;
        char *state_home;
        char *pg_db;
} Env;

static const char *settings_json =
        "{\n"
        "  \"technicians\": [\n"
        "    {\"id\": \"" NICK "\", \"full_name\": \"Nicolas Lessard\", \"display_name\": \"Nick\",\n"
        "     \"email\": \"nick@example.com\", \"aliases\": [\"usr_nickOldAccount01\"]},\n"
        "    {\"id\": \"" JP "\", \"full_name\": \"Jean-Philippe Reny\", \"display_name\": \"JP\",\n"
        "     \"email\": \"jp@example.com\"},\n"
        "    {\"id\": \"" MARGOT "\", \"full_name\": \"Margot Charignon\", \"display_name\": \"Margot\"}\n"
        "  ],\n"
        "  \"alerts\": {\"fallback_email\": \"bureau@example.com\",\n"
        "             \"excluded_institutions\": {\"client_ids\": [\"" UQAM "\"], \"name_patterns\": [\"place des arts\"]}},\n"
        "  \"mail\": {\"sender_email\": \"alertes@piano-tek.example\", \"sender_name\": \"Piano-Tek Alertes\",\n"
        "           \"admin_email\": \"admin@example.com\"}\n"
        "}\n";

static void env_clear_settings(void) {
        static const char *const clear[] = { "STATE_DIRECTORY", "DATABASE_URL", "CREDENTIALS_DIRECTORY",
                                             "SENDGRID_API_KEY", "SENDGRID_API_URL", "SMTP_URL", "SMTP_USERNAME",
                                             "SMTP_PASSWORD", "ALERTS_MAX_LATENESS", "INVOCATION_ID",
                                             "GAZELLE_CONFIG", "GAZELLE_API_URL", "GAZELLE_API_KEY",
                                             "GAZELLE_SYNC_DELETE_MAX_PERCENT" };
        test_unsetenv_all(clear, ELEMENTSOF(clear));
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        ASSERTF(f, "%s: %s", path, strerror(errno));
        fputs(content, f);
        ASSERT(fclose(f) == 0);
}

/* A fresh state directory (and PostgreSQL database when available), the settings file, and
 * "NAME=value" environment settings. */
static void env_init(Env *e, const char *const *settings) {
        *e = (Env) {};
        env_clear_settings();
        e->state_home = xasprintf("%s/state-%u", tmp_root, ++counter);
        ASSERT(mkdir(e->state_home, 0700) == 0);
        setenv("XDG_STATE_HOME", e->state_home, 1);
        _cleanup_free_ char *conf = xasprintf("%s/config.json", e->state_home);
        write_file(conf, settings_json);
        setenv("GAZELLE_CONFIG", conf, 1);
        if (pg_admin_url) {
                e->pg_db = test_pg_create_database(pg_admin_url, "alerts");
                _cleanup_free_ char *url = test_pg_conninfo_with_dbname(pg_admin_url, e->pg_db);
                setenv("DATABASE_URL", url, 1);
        }
        test_setenv_settings(settings);
        int r = config_load(&e->config, BUS_USER);
        ASSERT_OKF(r, "config_load: %s", e->config.error);
}

static void env_done(Env *e) {
        config_clear(&e->config);
        test_rm_rf(e->state_home);
        free(e->state_home);
        if (e->pg_db)
                test_pg_drop_database(pg_admin_url, e->pg_db);
        free(e->pg_db);
        env_clear_settings();
}

static int64_t query_int_arg(Db *db, const char *sql, const char *arg) {
        int64_t v = -1;
        int r = arg ? db_query_int(db, sql, DB_PARAMS(DBV_TEXT_OR_NULL(arg)), &v) : db_query_int(db, sql, DB_NO_PARAMS, &v);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
        return v;
}

/* ---- fixtures ---------------------------------------------------------------------------- */

static void add_client(Db *db, const char *id, const char *company, const char *first, const char *last,
                       const char *phone, const char *email) {
        char nowbuf[ISO_UTC_MAX];
        const char *now = format_iso_utc(now_realtime(), nowbuf);
        int r = db_exec(db, "INSERT INTO gazelle_clients (external_id, company_name, status, synced_at) VALUES ($1, $2, 'ACTIVE', $3)",
                        DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(company), DBV_TEXT_OR_NULL(now)));
        ASSERT_OKF(r, "%s", db_error(db));
        _cleanup_free_ char *cid = xasprintf("con_%s", id + 4);
        r = db_exec(db,
                    "INSERT INTO gazelle_contacts (external_id, client_external_id, is_default, first_name, last_name, "
                    "email, phone, street1, municipality, region, postal_code, synced_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, '4200 rue Saint-Denis', 'Montréal', 'QC', 'H2J 2K8', $8)",
                    DB_PARAMS(DBV_TEXT_OR_NULL(cid), DBV_TEXT_OR_NULL(id), DBV_B(true), DBV_TEXT_OR_NULL(first),
                              DBV_TEXT_OR_NULL(last), DBV_TEXT_OR_NULL(email), DBV_TEXT_OR_NULL(phone),
                              DBV_TEXT_OR_NULL(now)));
        ASSERT_OKF(r, "%s", db_error(db));
}

static void add_piano(Db *db, const char *id, const char *client, const char *make, const char *model) {
        char nowbuf[ISO_UTC_MAX];
        const char *now = format_iso_utc(now_realtime(), nowbuf);
        int r = db_exec(db,
                        "INSERT INTO gazelle_pianos (external_id, client_external_id, make, model, type, serial_number, "
                        "synced_at) VALUES ($1, $2, $3, $4, 'UPRIGHT', 'SN-42', $5)",
                        DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(client), DBV_TEXT_OR_NULL(make),
                                  DBV_TEXT_OR_NULL(model), DBV_TEXT_OR_NULL(now)));
        ASSERT_OKF(r, "%s", db_error(db));
}

typedef struct Appt {
        const char *id;
        LocalDate day;
        int hour, minute;
        const char *type, *status;
        bool confirmed;
        const char *client, *user, *notes, *pianos;
        bool deleted;
} Appt;

static void add_appointment(Db *db, const Appt *a) {
        char nowbuf[ISO_UTC_MAX], startbuf[ISO_UTC_MAX];
        const char *now = format_iso_utc(now_realtime(), nowbuf);
        const char *start = format_iso_utc(local_to_utc(a->day, a->hour, a->minute), startbuf);
        int r = db_exec(db,
                        "INSERT INTO gazelle_appointments (external_id, title, start_at, duration_minutes, is_all_day, "
                        "notes, type, status, confirmed_by_client, client_external_id, user_external_id, "
                        "piano_external_ids, synced_at, deleted_at) "
                        "VALUES ($1, 'Accord', $2, 60, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        DB_PARAMS(DBV_TEXT_OR_NULL(a->id), DBV_TEXT_OR_NULL(start), DBV_B(false),
                                  DBV_TEXT_OR_NULL(a->notes), DBV_TEXT_OR_NULL(a->type ? a->type : "APPOINTMENT"),
                                  DBV_TEXT_OR_NULL(a->status ? a->status : "ACTIVE"), DBV_B(a->confirmed),
                                  DBV_TEXT_OR_NULL(a->client), DBV_TEXT_OR_NULL(a->user),
                                  DBV_TEXT_OR_NULL(a->pianos), DBV_TEXT_OR_NULL(now),
                                  DBV_TEXT_OR_NULL(a->deleted ? now : NULL)));
        ASSERT_OKF(r, "%s: %s", a->id, db_error(db));
}

/* ---- running and reading back ------------------------------------------------------------ */

static int run_alerts(const Env *e, LocalDate target) {
        RunOptions opts = { .no_sync = true, .target_date = target };
        fflush(NULL);
        return task_run(&e->config, task_get(TASK_RV_ALERTS), &opts);
}

typedef struct Run {
        RunRow row;
        cJSON *stats;
} Run;

static void run_clear(Run *r) {
        run_row_clear(&r->row);
        cJSON_Delete(r->stats);
        *r = (Run) {};
}

static void last_run(const Env *e, Run *run) {
        _cleanup_(db_closep) Db *db = store_open_ok(&e->config);
        run_clear(run);
        int r = store_run_last(db, "rv_alerts", NULL, NULL, &run->row);
        ASSERT_OKF(r, "%s", db_error(db));
        ASSERT_EQ_INT(r, 1);
        run->stats = cJSON_Parse(run->row.stats);
        ASSERTF(run->stats, "stats: %s", run->row.stats);
}

static int stat_int(const Run *run, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(run->stats, key);
        ASSERTF(cJSON_IsNumber(v), "stats.%s missing in %s", key, run->row.stats);
        return v->valueint;
}

static int excluded(const Run *run, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(run->stats, "excluded"), key);
        ASSERTF(cJSON_IsNumber(v), "stats.excluded.%s missing in %s", key, run->row.stats);
        return v->valueint;
}

/* Sorted .eml paths of a directory (dot files, i.e. temporaries, left out). */
static size_t list_eml(const char *dir, char *paths[static 32]) {
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort);
        size_t k = 0;
        for (int i = 0; i < n; i++) {
                size_t len = strlen(ents[i]->d_name);
                if (ents[i]->d_name[0] != '.' && len > 4 && streq(ents[i]->d_name + len - 4, ".eml") && k < 32)
                        paths[k++] = xasprintf("%s/%s", dir, ents[i]->d_name);
                free(ents[i]);
        }
        free(ents);
        return k;
}

/* Python's email package parses them back: a JSON array (tests/fakes/parse_eml.py). */
static cJSON *parse_eml(char *const *paths, size_t n) {
        _cleanup_free_ char *cmd = xasprintf("python3 %s/parse_eml.py", TEST_FAKES_DIR);
        for (size_t i = 0; i < n; i++) {
                char *c = xasprintf("%s '%s'", cmd, paths[i]);
                free(cmd);
                cmd = c;
        }
        FILE *p = popen(cmd, "re");
        ASSERT(p);
        char buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf - 1, p);
        buf[len] = 0;
        ASSERT_EQ_INT(pclose(p), 0);
        cJSON *j = cJSON_Parse(buf);
        ASSERTF(cJSON_IsArray(j), "parse_eml.py: %s", buf);
        return j;
}

static const char *jstr(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *find_to(const cJSON *msgs, const char *to) {
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
                const char *t = jstr(m, "to");
                if (t && strstr(t, to))
                        return m;
        }
        return NULL;
}

/* The plain text of the one email in the outbox. */
static char *outbox_single_text(const Env *e) {
        _cleanup_free_ char *outbox = xasprintf("%s/outbox", e->config.state_dir);
        char *paths[32];
        size_t n = list_eml(outbox, paths);
        ASSERT_EQ_INT(n, 1);
        cJSON *msgs = parse_eml(paths, n);
        char *text = xstrdup(strempty(jstr(cJSON_GetArrayItem(msgs, 0), "text")));
        cJSON_Delete(msgs);
        free(paths[0]);
        return text;
}

/* ---- fakes ------------------------------------------------------------------------------- */

typedef struct Fake {
        pid_t pid;
        int port;
        char *dir;
} Fake;

static void fake_start(Fake *f, const char *script, const char *const *args) {
        *f = (Fake) {};
        f->dir = xasprintf("%s/fake-%u", tmp_root, ++counter);
        ASSERT(mkdir(f->dir, 0700) == 0);
        _cleanup_free_ char *port_file = xasprintf("%s/port", f->dir);
        _cleanup_free_ char *path = xasprintf("%s/%s", TEST_FAKES_DIR, script);
        const char *argv[24] = { "python3", path, "--port-file", port_file };
        size_t n = 4;
        for (const char *const *a = args; a && *a && n < ELEMENTSOF(argv) - 1; a++)
                argv[n++] = *a;
        f->pid = test_fork();
        if (f->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed assertion must not leave it behind */
                execvp("python3", (char **) argv);
                _exit(127);
        }
        for (int i = 0; i < 1500; i++) { /* 30 s: python3 starts slowly on a loaded machine */
                _cleanup_fclose_ FILE *pf = fopen(port_file, "re");
                if (pf && fscanf(pf, "%d", &f->port) == 1)
                        return;
                usleep(20000);
        }
        TEST_FAIL("%s did not start", script);
}

static void fake_stop(Fake *f) {
        if (f->pid > 0) {
                kill(f->pid, SIGTERM);
                waitpid(f->pid, NULL, 0);
        }
        test_rm_rf(f->dir);
        free(f->dir);
        *f = (Fake) {};
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        char **s = userdata;
        char *n = xasprintf("%s%.*s", strempty(*s), (int) (size * nmemb), ptr);
        free(*s);
        *s = n;
        return size * nmemb;
}

/* GET (body NULL) or POST JSON to the fake's control endpoints; the parsed answer. */
static cJSON *fake_call(const Fake *f, const char *path, const char *body) {
        CURL *c = curl_easy_init();
        ASSERT(c);
        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d%s", f->port, path);
        char *out = NULL;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        CURLcode cc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        ASSERTF(cc == CURLE_OK, "%s: %s", url, curl_easy_strerror(cc));
        cJSON *j = cJSON_Parse(strempty(out));
        free(out);
        ASSERT(j);
        return j;
}

static int fake_accepted(const Fake *f, int *ret_requests) {
        cJSON *s = fake_call(f, "/_state", NULL);
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "accepted"));
        if (ret_requests)
                *ret_requests = cJSON_GetObjectItemCaseSensitive(s, "requests")->valueint;
        cJSON_Delete(s);
        return n;
}

/* ---- the scenario most tests share ------------------------------------------------------- */

static const LocalDate target = { 2026, 11, 25 };

/* Five unconfirmed appointments for four recipients, plus one of each exclusion. */
static void seed_day(Db *db) {
        LocalDate d = target;
        add_client(db, "cli_tremblay", NULL, "Jean", "Tremblay", "514-555-0101", "jean@example.org");
        add_client(db, "cli_script", "Studio <b>Bach</b> & Fils", "Éloïse", "D'Amour", "514-555-0102", NULL);
        add_client(db, "cli_plain", NULL, "Lucie", "Gagnon", "450-555-0103", "lucie@example.org");
        add_client(db, UQAM, "UQAM", NULL, NULL, NULL, NULL);
        add_client(db, "cli_pda", "Place des Arts", NULL, NULL, NULL, NULL);
        add_piano(db, "ins_yamaha", "cli_tremblay", "Yamaha", "U1");
        const Appt appts[] = {
                /* alerted */
                { "evt_nick_late", d, 14, 30, .client = "cli_tremblay", .user = NICK, .pianos = "[\"ins_yamaha\"]",
                  .notes = "Sonner deux fois" },
                { "evt_nick_alias", d, 9, 0, .client = "cli_script", .user = "usr_nickOldAccount01",
                  .notes = "<script>alert(1)</script>" },
                { "evt_jp", d, 10, 0, .client = "cli_plain", .user = JP },
                { "evt_margot", d, 11, 0, .client = "cli_tremblay", .user = MARGOT },
                { "evt_ghost", d, 12, 0, .client = "cli_plain", .user = UNKNOWN },
                /* excluded, one reason each */
                { "evt_confirmed", d, 13, 0, .client = "cli_plain", .user = NICK, .confirmed = true },
                { "evt_personal", d, 13, 0, .type = "PERSONAL", .client = "cli_plain", .user = NICK },
                { "evt_memo", d, 13, 0, .type = "MEMO", .user = NICK },
                { "evt_cancelled", d, 13, 0, .status = "CANCELED", .client = "cli_plain", .user = NICK },
                { "evt_deleted", d, 13, 0, .client = "cli_plain", .user = NICK, .deleted = true },
                { "evt_uqam", d, 15, 0, .client = UQAM, .user = JP },
                { "evt_pda", d, 15, 0, .client = "cli_pda", .user = JP },
                { "evt_nobody", d, 15, 0, .client = "cli_plain" },
                { "evt_noclient", d, 15, 0, .user = JP },
                /* other days */
                { "evt_today", local_date_add_days(d, -1), 14, 0, .client = "cli_plain", .user = NICK },
                { "evt_after", local_date_add_days(d, 1), 9, 0, .client = "cli_plain", .user = NICK },
        };
        for (size_t i = 0; i < ELEMENTSOF(appts); i++)
                add_appointment(db, &appts[i]);
}

/* ---- tests ------------------------------------------------------------------------------- */

TEST(classify_and_parse) {
        Settings s = {};
        const char *ids[] = { UQAM, NULL }, *pats[] = { "place des arts", NULL };
        s.excluded.client_ids = (char **) ids;
        s.excluded.name_patterns = (char **) pats;
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, "cli_a", "A", NICK, false), ALERT_UNCONFIRMED);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, "cli_a", "A", NICK, true),
                      ALERT_EXCLUDED_CONFIRMED);
        ASSERT_EQ_INT(alert_classify(&s, "SYNCED", "ACTIVE", false, "cli_a", "A", NICK, false), ALERT_EXCLUDED_TYPE);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "NO_SHOW", false, "cli_a", "A", NICK, false),
                      ALERT_EXCLUDED_CANCELLED);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", true, "cli_a", "A", NICK, false),
                      ALERT_EXCLUDED_CANCELLED);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, NULL, NULL, NICK, false),
                      ALERT_EXCLUDED_NO_CLIENT);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, "cli_a", "A", NULL, false),
                      ALERT_EXCLUDED_NO_TECHNICIAN);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, UQAM, "Université", NICK, false),
                      ALERT_EXCLUDED_INSTITUTION);
        ASSERT_EQ_INT(alert_classify(&s, "APPOINTMENT", "ACTIVE", false, "cli_x", "Salle PLACE DES ARTS", NICK, false),
                      ALERT_EXCLUDED_INSTITUTION);

        usec_t u;
        ASSERT_OK(parse_timespan("4h", &u));
        ASSERT_EQ_INT(u, 4 * 3600 * USEC_PER_SEC);
        ASSERT_OK(parse_timespan("90min", &u));
        ASSERT_EQ_INT(u, 90 * 60 * USEC_PER_SEC);
        ASSERT_OK(parse_timespan("3600", &u));
        ASSERT_EQ_INT(u, 3600 * USEC_PER_SEC);
        ASSERT_ERRNO(parse_timespan("4 hours", &u), -EINVAL);
        ASSERT_ERRNO(parse_timespan("-1h", &u), -EINVAL);
        ASSERT_ERRNO(parse_timespan("", &u), -EINVAL);

        _cleanup_free_ char *fr = alerts_format_day_fr((LocalDate) { 2026, 11, 1 });
        ASSERT_STREQ(fr, "dimanche 1er novembre 2026");
}

/* The target is the day after the 16:00 slot; a run more than max after the slot skips. */
TEST(target_day_and_lateness) {
        const usec_t four_h = 4 * 3600 * USEC_PER_SEC, min = 60 * USEC_PER_SEC;
        LocalDate t, slot;
        usec_t late;
        char a[16], b[16];
        struct {
                LocalDate day;
                int h, m;
                const char *slot, *target;
                bool skip;
        } cases[] = {
                { { 2026, 3, 7 }, 16, 0, "2026-03-07", "2026-03-08", false },  /* tomorrow is 23 h long */
                { { 2026, 10, 31 }, 16, 5, "2026-10-31", "2026-11-01", false }, /* tomorrow is 25 h long */
                { { 2026, 11, 24 }, 19, 59, "2026-11-24", "2026-11-25", false },
                { { 2026, 11, 24 }, 22, 0, "2026-11-24", "2026-11-25", true },  /* 6 h late */
                { { 2026, 11, 25 }, 8, 0, "2026-11-24", "2026-11-25", true },   /* morning catch-up */
                { { 2026, 3, 8 }, 20, 0, "2026-03-08", "2026-03-09", false },   /* 4 h on a 23 h day */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                usec_t at = local_to_utc(cases[i].day, cases[i].h, cases[i].m);
                int r = alerts_target_day(at, four_h, &t, &slot, &late);
                ASSERT_STREQ(format_local_date(slot, a), cases[i].slot);
                ASSERT_STREQ(format_local_date(t, b), cases[i].target);
                ASSERTF(r == cases[i].skip, "case %zu: r=%d late=%" PRIu64 " min", i, r, late / min);
        }
        ASSERT_EQ_INT(alerts_target_day(local_to_utc(target, 22, 0), four_h, &t, &slot, &late), 1);
        ASSERT_EQ_INT(late, 6 * 3600 * USEC_PER_SEC);
}

/* 23:30 and 00:15 local around the 23-hour and the 25-hour days. */
TEST(montreal_day_bounds_dst) {
        static const LocalDate days[] = { { 2026, 3, 8 }, { 2026, 11, 1 } };
        for (size_t k = 0; k < ELEMENTSOF(days); k++) {
                Env e;
                env_init(&e, NULL);
                _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                LocalDate d = days[k], before = local_date_add_days(d, -1), after = local_date_add_days(d, 1);
                add_client(db, "cli_a", NULL, "Anne", "Hébert", "514-555-0000", NULL);
                const Appt appts[] = {
                        { "evt_prev_2330", before, 23, 30, .client = "cli_a", .user = NICK },
                        { "evt_0015", d, 0, 15, .client = "cli_a", .user = NICK },
                        { "evt_0130", d, 1, 30, .client = "cli_a", .user = NICK }, /* the repeated hour in fall */
                        { "evt_2330", d, 23, 30, .client = "cli_a", .user = NICK },
                        { "evt_next_0015", after, 0, 15, .client = "cli_a", .user = NICK },
                };
                for (size_t i = 0; i < ELEMENTSOF(appts); i++)
                        add_appointment(db, &appts[i]);
                ASSERT_EQ_INT(run_alerts(&e, d), 0);
                _cleanup_(run_clear) Run run = {};
                last_run(&e, &run);
                ASSERT_STREQ(run.row.status, "success");
                ASSERT_EQ_INT(stat_int(&run, "appointments"), 3);
                ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 3);
                ASSERT_EQ_INT(stat_int(&run, "queued"), 1);
                ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE appointment_external_id = $1",
                                        "evt_prev_2330"), 0);
                ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE appointment_external_id = $1",
                                        "evt_next_0015"), 0);
                _cleanup_free_ char *text = outbox_single_text(&e);
                ASSERT_CONTAINS(text, "00:15 — Anne Hébert");
                ASSERT_CONTAINS(text, "01:30 — Anne Hébert");
                ASSERT_CONTAINS(text, "23:30 — Anne Hébert");
                ASSERT(strstr(text, "00:15") < strstr(text, "01:30") && strstr(text, "01:30") < strstr(text, "23:30"));
                env_done(&e);
        }
}

/* Routing, exclusions, one parsed-back email per technician; then the re-run and a move. */
TEST(outbox_routing_content_rerun_move) {
        Env e;
        env_init(&e, NULL);
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);

        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "success");
        ASSERT_CONTAINS(run.row.message, "mercredi 25 novembre 2026");
        ASSERT_CONTAINS(run.row.message, "4 courriels mis en file");
        ASSERT_CONTAINS(run.row.message, "pas envoyés");
        ASSERT_STREQ(jstr(run.stats, "target_date"), "2026-11-25");
        ASSERT_STREQ(jstr(run.stats, "transport"), "outbox");
        ASSERT_EQ_INT(stat_int(&run, "appointments"), 14);
        ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 5);
        ASSERT_EQ_INT(stat_int(&run, "queued"), 4);
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 0);
        ASSERT_EQ_INT(stat_int(&run, "failed"), 0);
        ASSERT_EQ_INT(excluded(&run, "confirmed"), 1);
        ASSERT_EQ_INT(excluded(&run, "other_type"), 2);
        ASSERT_EQ_INT(excluded(&run, "cancelled"), 2);
        ASSERT_EQ_INT(excluded(&run, "excluded_institution"), 2);
        ASSERT_EQ_INT(excluded(&run, "no_technician"), 1);
        ASSERT_EQ_INT(excluded(&run, "no_client"), 1);
        const cJSON *techs = cJSON_GetObjectItemCaseSensitive(run.stats, "technicians");
        ASSERT_EQ_INT(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(techs, "Nick"), "unconfirmed")->valueint, 2);
        ASSERT(cJSON_GetObjectItemCaseSensitive(techs, "JP"));
        ASSERT(cJSON_GetObjectItemCaseSensitive(techs, UNKNOWN));
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(techs, "Nicolas Lessard"));

        _cleanup_free_ char *outbox = xasprintf("%s/outbox", e.config.state_dir);
        char *paths[32];
        size_t n = list_eml(outbox, paths);
        ASSERT_EQ_INT(n, 4);
        cJSON *msgs = parse_eml(paths, n);
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
                ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "defects")), 0);
                ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "crlf_only")));
                ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "ascii_headers")));
                ASSERT(cJSON_GetObjectItemCaseSensitive(m, "max_line")->valueint <= 998);
                ASSERT_STREQ(jstr(m, "mime_version"), "1.0");
                ASSERT_STREQ(jstr(m, "content_type"), "multipart/alternative");
                ASSERT_CONTAINS(jstr(m, "message_id"), "@piano-tek.example>");
                ASSERT(jstr(m, "date_parsed"));
                ASSERT_STREQ(jstr(m, "from"), "Piano-Tek Alertes <alertes@piano-tek.example>");
                ASSERT(jstr(m, "html"));
        }
        /* Nick: both (one through an alias), by time, greeting by display name, HTML escaped. */
        const cJSON *nick = find_to(msgs, "nick@example.com");
        ASSERT(nick);
        ASSERT_STREQ(jstr(nick, "subject"), "Rendez-vous non confirmés du mercredi 25 novembre 2026 — Nick (2)");
        const char *text = jstr(nick, "text"), *html = jstr(nick, "html");
        ASSERT_CONTAINS(text, "Bonjour Nick,");
        ASSERT_CONTAINS(text, "09:00 — Studio <b>Bach</b> & Fils");
        ASSERT_CONTAINS(text, "14:30 — Jean Tremblay");
        ASSERT(strstr(text, "09:00") < strstr(text, "14:30"));
        ASSERT_CONTAINS(text, "Téléphone : 514-555-0101");
        ASSERT_CONTAINS(text, "Courriel : jean@example.org");
        ASSERT_CONTAINS(text, "Adresse : 4200 rue Saint-Denis, Montréal QC, H2J 2K8");
        ASSERT_CONTAINS(text, "Piano : Yamaha U1 (Piano droit), n° de série SN-42");
        ASSERT_CONTAINS(text, "Notes : Sonner deux fois");
        ASSERT_CONTAINS(html, "Bonjour Nick,");
        ASSERT_CONTAINS(html, "Studio &lt;b&gt;Bach&lt;/b&gt; &amp; Fils");
        ASSERT_CONTAINS(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
        ASSERT_NULL(strstr(html, "<script>"));
        ASSERT_CONTAINS(html, "D&#39;Amour");
        /* JP: only his own; the institutions are not there. */
        const cJSON *jp = find_to(msgs, "jp@example.com");
        ASSERT(jp);
        ASSERT_CONTAINS(jstr(jp, "text"), "Bonjour JP,");
        ASSERT_CONTAINS(jstr(jp, "text"), "10:00 — Lucie Gagnon");
        ASSERT_NULL(strstr(jstr(jp, "text"), "UQAM"));
        ASSERT_NULL(strstr(jstr(jp, "text"), "Place des Arts"));
        /* Margot has no address, the ghost is unknown: both to the fallback, never nowhere. */
        const cJSON *fb1 = NULL, *fb2 = NULL;
        cJSON_ArrayForEach(m, msgs) if (strstr(jstr(m, "to"), "bureau@example.com")) {
                if (!fb1)
                        fb1 = m;
                else
                        fb2 = m;
        }
        ASSERT(fb1 && fb2);
        const cJSON *ghost = strstr(jstr(fb1, "text"), UNKNOWN) ? fb1 : fb2;
        const cJSON *margot = ghost == fb1 ? fb2 : fb1;
        ASSERT_CONTAINS(jstr(ghost, "text"), "utilisateur Gazelle " UNKNOWN);
        ASSERT_CONTAINS(jstr(ghost, "subject"), "technicien inconnu " UNKNOWN);
        ASSERT_CONTAINS(jstr(margot, "text"), "Bonjour Margot,");
        cJSON_Delete(msgs);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);

        /* The outbox is queued, never sent. */
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "sent"), 0);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1 AND transport = 'outbox'",
                                "queued"), 5);

        /* A second run sends nothing, and says they are in the outbox, not sent. */
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "success");
        ASSERT_EQ_INT(stat_int(&run, "queued"), 0);
        ASSERT_EQ_INT(stat_int(&run, "already_sent"), 0);
        ASSERT_EQ_INT(stat_int(&run, "already_queued"), 5);
        ASSERT_CONTAINS(run.row.message, "5 alertes déjà en file dans");
        ASSERT_CONTAINS(run.row.message, "(pas envoyées)");
        ASSERT_NULL(strstr(run.row.message, "déjà envoyée"));
        ASSERT_EQ_INT(list_eml(outbox, paths), 4);
        for (size_t i = 0; i < 4; i++)
                free(paths[i]);

        /* JP's appointment moves to Nick, Margot's to the next day: each is alerted anew. */
        int r = db_exec(db, "UPDATE gazelle_appointments SET user_external_id = $1 WHERE external_id = 'evt_jp'",
                        DB_PARAMS(DBV_TEXT_OR_NULL(NICK)));
        ASSERT_OKF(r, "%s", db_error(db));
        char start[ISO_UTC_MAX];
        r = db_exec(db, "UPDATE gazelle_appointments SET start_at = $1 WHERE external_id = 'evt_margot'",
                    DB_PARAMS(DBV_TEXT_OR_NULL(format_iso_utc(local_to_utc(local_date_add_days(target, 1), 8, 0), start))));
        ASSERT_OKF(r, "%s", db_error(db));
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        last_run(&e, &run);
        ASSERT_EQ_INT(stat_int(&run, "queued"), 1);
        ASSERT_EQ_INT(stat_int(&run, "already_queued"), 3);
        ASSERT_EQ_INT(run_alerts(&e, local_date_add_days(target, 1)), 0);
        last_run(&e, &run);
        ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 2); /* evt_after and the moved evt_margot */
        ASSERT_EQ_INT(stat_int(&run, "queued"), 2);
        ASSERT_EQ_INT(list_eml(outbox, paths), 7);
        for (size_t i = 0; i < 7; i++)
                free(paths[i]);
        env_done(&e);
}


/* ---- the day's refresh from Gazelle ------------------------------------------------------- */

#define GAZELLE_KEY "test-gazelle-key"

/* An event of the fake Gazelle and the same appointment in the store, as the nightly sync left
 * it: active, unconfirmed, Nick's, client cli_a. */
static void add_event(Db *db, cJSON *events, const char *id, LocalDate day, int hour, int minute, bool confirmed) {
        char start[ISO_UTC_MAX];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", id);
        cJSON_AddStringToObject(e, "start", format_iso_utc(local_to_utc(day, hour, minute), start));
        cJSON_AddBoolToObject(e, "confirmedByClient", confirmed);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(e, "client"), "id", "cli_a");
        cJSON *u = cJSON_AddObjectToObject(e, "user");
        cJSON_AddStringToObject(u, "id", NICK);
        cJSON_AddStringToObject(u, "firstName", "Nicolas");
        cJSON_AddStringToObject(u, "lastName", "Lessard");
        cJSON_AddItemToArray(events, e);
        Appt a = { id, day, hour, minute, .confirmed = confirmed, .client = "cli_a", .user = NICK };
        add_appointment(db, &a);
}

static void fake_control(const Fake *f, cJSON *body) {
        _cleanup_free_ char *s = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        cJSON_Delete(fake_call(f, "/_control", s));
}

static void gazelle_env(Env *e, const Fake *f, const char *const *more) {
        _cleanup_free_ char *url = xasprintf("GAZELLE_API_URL=http://127.0.0.1:%d/graphql/private/", f->port);
        const char *settings[8] = { url, "GAZELLE_API_KEY=" GAZELLE_KEY, "GAZELLE_HTTP_BACKOFF_MS=20" };
        size_t n = 3;
        for (; more && *more && n < ELEMENTSOF(settings) - 1; more++)
                settings[n++] = *more;
        env_init(e, settings);
}

/* Seeds day d and its neighbours, in Gazelle and in the store: 00:15, 19:30 and 23:30 local on
 * each (the evening ones are on the next UTC day), four confirmed daytime ones each; then, after
 * the "nightly sync", d's 08:00 is deleted in Gazelle and its 23:45 confirmed. Ids start with p. */
static void seed_edges(Db *db, const Fake *f, const char *p, LocalDate d) {
        static const struct {
                int hour, minute;
                bool confirmed;
        } times[] = { { 0, 15, false }, { 9, 0, true }, { 10, 0, true }, { 11, 0, true }, { 14, 0, true },
                      { 19, 30, false }, { 23, 30, false } };
        static const char *const which[] = { "prev", "day", "next" };
        add_client(db, "cli_a", NULL, "Anne", "Hébert", "514-555-0000", NULL);
        cJSON *events = cJSON_CreateArray();
        for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                        _cleanup_free_ char *id = xasprintf("%s_%s_%02d%02d", p, which[k], times[i].hour, times[i].minute);
                        add_event(db, events, id, local_date_add_days(d, k - 1), times[i].hour, times[i].minute,
                                  times[i].confirmed);
                }
        _cleanup_free_ char *deleted = xasprintf("%s_day_0800", p), *confirmed = xasprintf("%s_day_2345", p);
        add_event(db, events, deleted, d, 8, 0, false);
        add_event(db, events, confirmed, d, 23, 45, false);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddBoolToObject(c, "clear_events", true);
        cJSON_AddItemToObject(c, "add_events", events);
        fake_control(f, c);

        c = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "delete"), cJSON_CreateString(deleted));
        cJSON *edit = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "edit"), confirmed);
        cJSON_AddBoolToObject(edit, "confirmedByClient", true);
        fake_control(f, c);
}

static int run_alerts_synced(const Env *e, LocalDate day) {
        RunOptions opts = { .target_date = day };
        fflush(NULL);
        return task_run(&e->config, task_get(TASK_RV_ALERTS), &opts);
}

/* The first column of every row, ' '-joined. */
static char *column_joined(Db *db, const char *sql, const DbValue *params, size_t n_params) {
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, sql, params, n_params, &c);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
        char *out = xstrdup("");
        while ((r = db_cursor_next(c)) > 0)
                out = strextendf(out, "%s%s", *out ? " " : "", db_cursor_text(c, 0));
        ASSERT_OKF(r, "%s", db_error(db));
        return out;
}

/* The ids starting with p of the appointments that match a condition. */
static char *appt_ids(Db *db, const char *p, const char *where) {
        _cleanup_free_ char *sql = xasprintf("SELECT external_id FROM gazelle_appointments WHERE substr(external_id, 1, "
                                             "length($1)) = $1 AND %s ORDER BY external_id", where);
        return column_joined(db, sql, DB_PARAMS(DBV_TEXT_OR_NULL(p), DBV_B(true)));
}

static char *ledger_ids(Db *db) {
        return column_joined(db, "SELECT appointment_external_id FROM alert_ledger ORDER BY 1", DB_NO_PARAMS);
}

/* Whatever Gazelle's reading of startOn/endOn, the whole Montréal day is refreshed: its 00:15,
 * 19:30 and 23:30 appointments are alerted and nothing else; the deletion and the confirmation
 * made after the nightly sync are seen; no neighbour is taken for cancelled. On an ordinary
 * day and on both DST Sundays. */
TEST(day_refresh_both_readings) {
        static const char *const readings[] = { "utc", "montreal" };
        static const LocalDate days[] = { { 2026, 11, 25 }, { 2026, 3, 8 }, { 2026, 11, 1 } };
        Fake f;
        fake_start(&f, "gazelle.py", (const char *const[]) { "--api-key", GAZELLE_KEY, "--clients", "0", "--pianos", "0",
                                                            "--timeline", "0", "--events", "0", NULL });
        for (size_t r = 0; r < ELEMENTSOF(readings); r++)
                for (size_t k = 0; k < ELEMENTSOF(days); k++) {
                        _cleanup_free_ char *p = xasprintf("evt_%s%zu", readings[r], k);
                        cJSON *c = cJSON_CreateObject();
                        cJSON_AddStringToObject(c, "date_filters", readings[r]);
                        fake_control(&f, c);
                        Env e;
                        gazelle_env(&e, &f, NULL);
                        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
                        LocalDate d = days[k];
                        seed_edges(db, &f, p, d);

                        ASSERT_EQ_INT(run_alerts_synced(&e, d), 0);
                        _cleanup_(run_clear) Run run = {};
                        last_run(&e, &run);
                        ASSERTF(streq(run.row.status, "success"), "%s, %s: %s", readings[r], p, run.row.message);
                        ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 3);
                        ASSERT_EQ_INT(stat_int(&run, "queued"), 1);
                        ASSERT_EQ_INT(excluded(&run, "confirmed"), 5);
                        ASSERT_EQ_INT(excluded(&run, "cancelled"), 1);
                        _cleanup_free_ char *want = xasprintf("%s_day_0015 %s_day_1930 %s_day_2330", p, p, p);
                        _cleanup_free_ char *ledger = ledger_ids(db);
                        ASSERT_STREQ(ledger, want);
                        /* The deletion is a cancellation, nothing else is; the confirmation arrived. */
                        _cleanup_free_ char *cancelled = appt_ids(db, p, "status = 'CANCELED' AND $2");
                        _cleanup_free_ char *want_cancelled = xasprintf("%s_day_0800", p);
                        ASSERT_STREQ(cancelled, want_cancelled);
                        _cleanup_free_ char *confirmed = appt_ids(db, p, "confirmed_by_client = $2 AND "
                                                                      "substr(external_id, length($1) + 1) = '_day_2345'");
                        _cleanup_free_ char *want_confirmed = xasprintf("%s_day_2345", p);
                        ASSERT_STREQ(confirmed, want_confirmed);

                        _cleanup_free_ char *text = outbox_single_text(&e);
                        ASSERT_CONTAINS(text, "00:15 — Anne Hébert");
                        ASSERT_CONTAINS(text, "19:30 — Anne Hébert");
                        ASSERT_CONTAINS(text, "23:30 — Anne Hébert");
                        ASSERT_NULL(strstr(text, "08:00"));
                        ASSERT_NULL(strstr(text, "23:45"));
                        env_done(&e);
                }
        fake_stop(&f);
}

/* A run that cannot be sure of the day says so and ends warning: the deletion held back by the
 * threshold is not mailed (absent from Gazelle) nor marked cancelled; a refresh that fails
 * alerts from the store's last sync and says so. */
TEST(day_refresh_uncertain_is_warning) {
        Fake f;
        fake_start(&f, "gazelle.py", (const char *const[]) { "--api-key", GAZELLE_KEY, "--clients", "0", "--pianos", "0",
                                                            "--timeline", "0", "--events", "0", "--date-filters", "utc",
                                                            NULL });
        Env e;
        gazelle_env(&e, &f, (const char *const[]) { "GAZELLE_SYNC_DELETE_MAX_PERCENT=0", NULL });
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_edges(db, &f, "evt_held", target);
        ASSERT_EQ_INT(run_alerts_synced(&e, target), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "warning");
        ASSERT_CONTAINS(run.row.message, "1 rendez-vous absent de la réponse de Gazelle sans être marqué annulé, non alerté");
        ASSERT_CONTAINS(run.row.message, "aucun marqué annulé");
        ASSERT_EQ_INT(excluded(&run, "absent_from_gazelle"), 1);
        _cleanup_free_ char *ledger = ledger_ids(db);
        ASSERT_STREQ(ledger, "evt_held_day_0015 evt_held_day_1930 evt_held_day_2330");
        _cleanup_free_ char *cancelled = appt_ids(db, "evt_held", "status = 'CANCELED' AND $2");
        ASSERT_STREQ(cancelled, "");
        env_done(&e);

        gazelle_env(&e, &f, (const char *const[]) { "GAZELLE_API_KEY=wrong-key", NULL });
        db_close(TAKE_PTR(db));
        db = store_open_ok(&e.config);
        seed_edges(db, &f, "evt_stale", target);
        ASSERT_EQ_INT(run_alerts_synced(&e, target), 0);
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "warning");
        ASSERT_CONTAINS(run.row.message, "rendez-vous non rafraîchis depuis Gazelle, données de la dernière synchronisation");
        ASSERT_CONTAINS(run.row.message, "GAZELLE_API_KEY");
        ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 5);
        env_done(&e);
        fake_stop(&f);
}

/* A late catch-up without --target-date is skipped and says why; nothing is mailed. */
TEST(late_catch_up_skipped) {
        Env e;
        env_init(&e, (const char *const[]) { "ALERTS_MAX_LATENESS=1s", NULL });
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);
        RunOptions opts = { .no_sync = true };
        fflush(NULL);
        ASSERT_EQ_INT(task_run(&e.config, task_get(TASK_RV_ALERTS), &opts), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "skipped");
        ASSERT_CONTAINS(run.row.message, "Rattrapage ignoré");
        ASSERT_CONTAINS(run.row.message, "--target-date");
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger", NULL), 0);

        /* A bad value is refused when the configuration loads (test-config has the table). */
        setenv("ALERTS_MAX_LATENESS", "quatre heures", 1);
        Config bad;
        ASSERT_ERRNO(config_load(&bad, BUS_USER), -EINVAL);
        ASSERT_CONTAINS(bad.error, "ALERTS_MAX_LATENESS=quatre heures");
        config_clear(&bad);
        env_done(&e);
}

/* --dry-run: the selection and its stats, no ledger row, no mail. */
TEST(dry_run_sends_nothing) {
        Env e;
        env_init(&e, NULL);
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);
        RunOptions opts = { .no_sync = true, .dry_run = true, .target_date = target };
        fflush(NULL);
        ASSERT_EQ_INT(task_run(&e.config, task_get(TASK_RV_ALERTS), &opts), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "success");
        ASSERT_CONTAINS(run.row.message, "simulation");
        ASSERT_EQ_INT(stat_int(&run, "unconfirmed"), 5);
        ASSERT_EQ_INT(stat_int(&run, "queued"), 0);
        ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(run.stats, "technicians"), "Nick"));
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger", NULL), 0);
        _cleanup_free_ char *outbox = xasprintf("%s/outbox", e.config.state_dir);
        char *paths[32];
        ASSERT_EQ_INT(list_eml(outbox, paths), 0);
        env_done(&e);
}

static void sendgrid_env(Env *e, const Fake *f) {
        _cleanup_free_ char *url = xasprintf("SENDGRID_API_URL=http://127.0.0.1:%d", f->port);
        env_init(e, (const char *const[]) { url, "SENDGRID_API_KEY=test-sendgrid-key", NULL });
}

/* SendGrid: accepted messages carry the content; X-Message-Id lands in the ledger; 4xx is not
 * retried, 429 is; an outage ends error with nothing marked sent and the next run sends. */
TEST(sendgrid) {
        Fake f;
        fake_start(&f, "sendgrid.py", NULL);
        Env e;
        sendgrid_env(&e, &f);
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);
        int requests;

        /* Outage: every attempt 503. */
        cJSON_Delete(fake_call(&f, "/_control", "{\"faults\": [{\"type\": \"status\", \"status\": 503, \"count\": -1}]}"));
        ASSERT_EQ_INT(run_alerts(&e, target), EXIT_TASK_FAILED);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "error");
        ASSERT_CONTAINS(run.row.message, "en échec");
        ASSERT_CONTAINS(run.row.message, "HTTP 503");
        ASSERT_EQ_INT(stat_int(&run, "failed"), 4);
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 0);
        ASSERT_EQ_INT(fake_accepted(&f, &requests), 0);
        ASSERT_EQ_INT(requests, 4 + 3); /* 4 attempts for the first email, then the provider is down: 1 each */
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "sent"), 0);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "failed"), 5);

        /* Back up, with one 429 on the way: everything is sent once. */
        cJSON_Delete(fake_call(&f, "/_control", "{\"reset\": true, \"faults\": [{\"type\": \"status\", \"status\": 429, "
                                               "\"retry_after\": 1, \"count\": 1}]}"));
        usec_t t0 = now_monotonic();
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        /* The provider's Retry-After (1 s) wins over the first backoff step (≤ 625 ms). */
        ASSERT(now_monotonic() - t0 >= USEC_PER_SEC);
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "success");
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 4);
        ASSERT_EQ_INT(stat_int(&run, "failed"), 0);
        ASSERT_EQ_INT(fake_accepted(&f, &requests), 4);
        ASSERT_EQ_INT(requests, 5);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = 'sent' AND transport = $1 "
                                    "AND provider_message_id IS NOT NULL AND attempts = 2", "sendgrid"), 5);
        cJSON *st = fake_call(&f, "/_state", NULL);
        const cJSON *m, *nick = NULL;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(st, "accepted"))
                if (streq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "to"), 0)->valuestring, "nick@example.com"))
                        nick = m;
        ASSERT(nick);
        ASSERT_STREQ(jstr(nick, "from"), "alertes@piano-tek.example");
        ASSERT_STREQ(jstr(nick, "from_name"), "Piano-Tek Alertes");
        ASSERT_CONTAINS(jstr(nick, "text"), "Bonjour Nick,");
        ASSERT_CONTAINS(jstr(nick, "html"), "Studio &lt;b&gt;Bach&lt;/b&gt; &amp; Fils");
        cJSON_Delete(st);

        /* The re-run sends nothing. */
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        last_run(&e, &run);
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 0);
        ASSERT_EQ_INT(stat_int(&run, "already_sent"), 5);
        ASSERT_EQ_INT(stat_int(&run, "already_queued"), 0);
        ASSERT_CONTAINS(run.row.message, "5 alertes déjà envoyées");
        ASSERT_NULL(strstr(run.row.message, "en file"));
        ASSERT_EQ_INT(fake_accepted(&f, &requests), 4);

        /* A 400 is final: one request, the run fails, the row is failed, not sent. */
        Appt extra = { "evt_new", target, 17, 0, .client = "cli_plain", .user = JP };
        add_appointment(db, &extra);
        cJSON_Delete(fake_call(&f, "/_control", "{\"reset\": true, \"faults\": [{\"type\": \"status\", \"status\": 400, "
                                               "\"count\": 1}]}"));
        ASSERT_EQ_INT(run_alerts(&e, target), EXIT_TASK_FAILED);
        last_run(&e, &run);
        ASSERT_CONTAINS(run.row.message, "HTTP 400");
        fake_accepted(&f, &requests);
        ASSERT_EQ_INT(requests, 1);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = 'failed' AND appointment_external_id = $1",
                                "evt_new"), 1);
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        ASSERT_EQ_INT(fake_accepted(&f, NULL), 1);

        /* The provider takes the message and the answer is lost (the connection closes): the
         * fate is unknown, so the row is uncertain, and neither this run nor the next resends. */
        Appt lost = { "evt_lost", target, 18, 0, .client = "cli_plain", .user = JP };
        add_appointment(db, &lost);
        cJSON_Delete(fake_call(&f, "/_control", "{\"reset\": true, \"faults\": [{\"type\": \"accept_then_stall\", "
                                               "\"seconds\": 1, \"count\": 1}]}"));
        (void) run_alerts(&e, target);
        last_run(&e, &run);
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 0);
        ASSERT_EQ_INT(stat_int(&run, "uncertain"), 1);
        fake_accepted(&f, &requests);
        ASSERT_EQ_INT(requests, 1);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = 'uncertain' AND "
                                    "appointment_external_id = $1", "evt_lost"), 1);
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        last_run(&e, &run);
        ASSERT_EQ_INT(stat_int(&run, "uncertain"), 1);
        ASSERT_EQ_INT(fake_accepted(&f, &requests), 1);
        ASSERT_EQ_INT(requests, 1);

        /* A wrong key (401) is a failure too, never "sent". */
        env_done(&e);
        _cleanup_free_ char *url = xasprintf("SENDGRID_API_URL=http://127.0.0.1:%d", f.port);
        env_init(&e, (const char *const[]) { url, "SENDGRID_API_KEY=wrong", NULL });
        db_close(TAKE_PTR(db));
        db = store_open_ok(&e.config);
        seed_day(db);
        ASSERT_EQ_INT(run_alerts(&e, target), EXIT_TASK_FAILED);
        last_run(&e, &run);
        ASSERT_CONTAINS(run.row.message, "HTTP 401");
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 0);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "sent"), 0);
        env_done(&e);
        fake_stop(&f);
}

/* The provider accepts, the runner dies before it can write `sent`: the next run reports the
 * alert uncertain and does not send it again; the other technicians still get theirs. */
TEST(crash_after_acceptance_is_uncertain) {
        Fake f;
        fake_start(&f, "sendgrid.py", NULL);
        Env e;
        sendgrid_env(&e, &f);
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);
        cJSON_Delete(fake_call(&f, "/_control", "{\"faults\": [{\"type\": \"accept_then_stall\", \"seconds\": 60, \"count\": 1}]}"));

        pid_t pid = test_fork();
        if (pid == 0)
                _exit(run_alerts(&e, target));
        int accepted = 0;
        for (int i = 0; i < 3000 && accepted == 0; i++) {
                usleep(10000);
                accepted = fake_accepted(&f, NULL);
        }
        ASSERT_EQ_INT(accepted, 1);
        ASSERT(kill(pid, SIGKILL) == 0);
        ASSERT(waitpid(pid, NULL, 0) == pid);
        ASSERT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "sending") >= 1);

        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "warning");
        ASSERT_CONTAINS(run.row.message, "sort incertain");
        int uncertain = stat_int(&run, "uncertain");
        ASSERT(uncertain >= 1 && uncertain <= 2);
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 3);
        ASSERT_EQ_INT(fake_accepted(&f, NULL), 4); /* 1 before the crash + 3: no duplicate */
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "uncertain"), uncertain);
        ASSERT_EQ_INT(query_int_arg(db, "SELECT count(*) FROM alert_ledger WHERE state = $1", "sending"), 0);

        /* And it stays reported, never re-sent. */
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "warning");
        ASSERT_EQ_INT(stat_int(&run, "uncertain"), uncertain);
        ASSERT_EQ_INT(fake_accepted(&f, NULL), 4);
        env_done(&e);
        fake_stop(&f);
}

/* SMTP through libcurl with AUTH; one transient 451 is retried; the sink's files parse back. */
TEST(smtp) {
        Fake f;
        _cleanup_free_ char *dir = xasprintf("%s/smtp-%u", tmp_root, ++counter);
        fake_start(&f, "smtp_sink.py", (const char *const[]) { "--dir", dir, "--username", "gazelle", "--password",
                                                              "s3cret", "--fail-data", "1", NULL });
        Env e;
        _cleanup_free_ char *url = xasprintf("SMTP_URL=smtp://127.0.0.1:%d", f.port);
        env_init(&e, (const char *const[]) { url, "SMTP_USERNAME=gazelle", "SMTP_PASSWORD=s3cret", NULL });
        _cleanup_(db_closep) Db *db = store_open_ok(&e.config);
        seed_day(db);
        ASSERT_EQ_INT(run_alerts(&e, target), 0);
        _cleanup_(run_clear) Run run = {};
        last_run(&e, &run);
        ASSERT_STREQ(run.row.status, "success");
        ASSERT_STREQ(jstr(run.stats, "transport"), "smtp");
        ASSERT_EQ_INT(stat_int(&run, "emails_sent"), 4);
        char *paths[32];
        size_t n = list_eml(dir, paths);
        ASSERT_EQ_INT(n, 4);
        cJSON *msgs = parse_eml(paths, n);
        const cJSON *nick = find_to(msgs, "nick@example.com");
        ASSERT(nick);
        ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(nick, "defects")), 0);
        ASSERT_CONTAINS(jstr(nick, "text"), "Bonjour Nick,");
        cJSON_Delete(msgs);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        _cleanup_free_ char *env_json = xasprintf("%s/0001.json", dir);
        _cleanup_free_ char *envelope = NULL;
        ASSERT_OK(read_file_bounded(env_json, 4096, &envelope));
        ASSERT_CONTAINS(envelope, "\"auth_user\": \"gazelle\"");
        ASSERT_CONTAINS(envelope, "alertes@piano-tek.example");
        env_done(&e);
        fake_stop(&f);
        test_rm_rf(dir);
}

/* Composition details the parse-back does not see. */
TEST(compose) {
        _cleanup_free_ char *eml = NULL, *id = NULL;
        MailMessage m = {
                .from_email = "a@b.example", .from_name = "Équipe \"Piano\"", .to_email = "c@d.example",
                .subject = "Rendez-vous non confirmés du mercredi 25 novembre 2026 — un sujet assez long pour être "
                           "replié sur plusieurs mots encodés ✓",
                .text = "ligne 1\nligne 2\n",
        };
        ASSERT_OK(mail_compose(&m, now_realtime(), &eml, &id));
        ASSERT_CONTAINS(eml, "Subject: =?UTF-8?B?");
        ASSERT_CONTAINS(eml, "?=\r\n =?UTF-8?B?");
        ASSERT_CONTAINS(eml, "Content-Type: text/plain; charset=UTF-8\r\n");
        ASSERT_CONTAINS(eml, id);
        for (const char *p = eml; (p = strstr(p, "=?UTF-8?B?")); p++)
                ASSERT(strstr(p, "?=") - p + 2 <= 75);
        MailMessage bad = m;
        bad.to_email = "x@y.example\r\nBcc: victim@example.com";
        ASSERT_ERRNO(mail_compose(&bad, now_realtime(), &eml, NULL), -EINVAL);
        _cleanup_free_ char *h = html_escape("<a href=\"x\">l'été & co</a>");
        ASSERT_STREQ(h, "&lt;a href=&quot;x&quot;&gt;l&#39;été &amp; co&lt;/a&gt;");
}

static const TestCase cases[] = {
        TEST_CASE(classify_and_parse),
        TEST_CASE(target_day_and_lateness),
        TEST_CASE(compose),
        TEST_CASE(montreal_day_bounds_dst),
        TEST_CASE(day_refresh_both_readings),
        TEST_CASE(day_refresh_uncertain_is_warning),
        TEST_CASE(outbox_routing_content_rerun_move),
        TEST_CASE(late_catch_up_skipped),
        TEST_CASE(dry_run_sends_nothing),
        TEST_CASE(sendgrid),
        TEST_CASE(crash_after_acceptance_is_uncertain),
        TEST_CASE(smtp),
};

int main(int argc, char **argv) {
        tz_init();
        switch (test_pg_url(&pg_admin_url)) {
        case TEST_PG_MISSING:
                test_skip_all("inside the sandbox but no PostgreSQL URL (SBX_PG_URL)");
        case TEST_PG_NONE:
                pg_admin_url = NULL;
                break;
        default:
                break;
        }
        if (system("python3 -c 'import email.policy' >/dev/null 2>&1") != 0)
                test_skip_all("python3 is needed for the loopback fakes");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        tmp_root = test_mkdtemp("alerts");
        int r = TEST_MAIN(cases, argc, argv);
        test_rm_rf(tmp_root);
        free(tmp_root);
        curl_global_cleanup();
        return r;
}
