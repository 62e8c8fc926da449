/* SPDX-License-Identifier: MIT */
/* test-report.c — the report builder on a small hand-made history whose every row is known
 * (folding, duplicates, Montréal days, display names, alerts, an empty institution), the
 * humidity formats, CSV bytes, retention, and the RS256 JWT checked with the public key.
 * SQLite always; the same builder test on PostgreSQL when one is available (test-pg.h). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>

#include "db.h"
#include "google.h"
#include "migrate.h"
#include "csv.h"
#include "report.h"
#include "settings.h"
#include "test-pg.h"
#include "test.h"
#include "timeutil.h"

TEST(humidity_formats) {
        static const struct {
                const char *text, *expected;
        } cases[] = {
                { "Température 21°C, humidité 45 %", "21°, 45%" },
                { "70°F 40%", "21°, 40%" },
                { "Temp: 72 °F", "22°" },
                { "Humidité relative : 38", "38%" },
                { "HR 45,5 %", "46%" },
                { "21º", "21°" },
                { "Temperature 68, Humidity 35", "20°, 35%" },
                { "68F/35%", "20°, 35%" },
                { "19.6°C", "20°" },
                { "Accord 440 Hz, 3 cordes", NULL },
                { "", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *h = report_humidity_from_text(cases[i].text);
                if (!cases[i].expected)
                        ASSERTF(!h, "%s → %s", cases[i].text, h);
                else
                        ASSERTF(h && streq(h, cases[i].expected), "%s → %s, expected %s", cases[i].text,
                                h ? h : "NULL", cases[i].expected);
        }
}

TEST(keywords) {
        _cleanup_free_ char *dir = test_mkdtemp("report-kw");
        _cleanup_free_ char *cfg = xasprintf("%s/config.json", dir);
        FILE *f = fopen(cfg, "w");
        fputs("{}", f);
        fclose(f);
        Settings s = {};
        char err[256];
        ASSERT_OKF(settings_load(&s, cfg, err, sizeof err), "%s", err);
        test_rm_rf(dir);
        ASSERT_STREQ(report_match_keyword(s.maintenance_keywords, "HOUSSE ENLEVEE par le client"), "housse enlevée");
        ASSERT_STREQ(report_match_keyword(s.maintenance_keywords, "Fenetre ouverte au 3e"), "fenêtre ouverte");
        ASSERT_STREQ(report_match_keyword(s.maintenance_keywords, "Le Dampp-Chaser était DÉBRANCHÉ"), "débranché");
        ASSERT_STREQ(report_match_keyword(s.maintenance_keywords, "Réservoir vide, rempli"), "réservoir vide");
        ASSERT_NULL(report_match_keyword(s.maintenance_keywords, "Accord 440, tout va bien"));
        settings_clear(&s);
}

TEST(csv_bytes) {
        _cleanup_free_ char *dir = test_mkdtemp("report-csv");
        _cleanup_free_ char *path = xasprintf("%s/a.csv", dir);
        FILE *f = fopen(path, "w");
        ASSERT(f);
        const char *rec1[] = { "a", "b,c", "d\"e", "ligne 1\nligne 2", "" };
        const char *rec2[] = { "Café", "", "x" };
        ASSERT_OK(csv_write_record(f, rec1, 5));
        ASSERT_OK(csv_write_record(f, rec2, 3));
        fclose(f);
        _cleanup_free_ char *bytes = NULL;
        ASSERT_OK(read_file_bounded(path, 4096, &bytes));
        ASSERT_STREQ(bytes, "a,\"b,c\",\"d\"\"e\",\"ligne 1\nligne 2\",\r\nCafé,,x\r\n");

        f = fopen(path, "r");
        char **fields = NULL;
        size_t n = 0;
        ASSERT_EQ_INT(csv_read_record(f, &fields, &n), 1);
        ASSERT_EQ_INT(n, 5);
        for (size_t i = 0; i < 5; i++)
                ASSERT_STREQ(fields[i], rec1[i]);
        csv_record_free(fields);
        ASSERT_EQ_INT(csv_read_record(f, &fields, &n), 1);
        ASSERT_EQ_INT(n, 3);
        ASSERT_STREQ(fields[0], "Café");
        csv_record_free(fields);
        ASSERT_EQ_INT(csv_read_record(f, &fields, &n), 0);
        fclose(f);

        _cleanup_free_ char *s1 = report_file_slug("Vincent d'Indy");
        _cleanup_free_ char *s2 = report_file_slug("Alertes Maintenance");
        _cleanup_free_ char *s3 = report_file_slug("Ça « Orford » ");
        ASSERT_STREQ(s1, "vincent-d-indy");
        ASSERT_STREQ(s2, "alertes-maintenance");
        ASSERT_STREQ(s3, "ca-orford");
        test_rm_rf(dir);
}

TEST(retention) {
        _cleanup_free_ char *dir = test_mkdtemp("report-keep");
        const char *names[] = { "2026-10-25", "2026-10-26", "2026-11-24", "notes", "2026-1-1", ".tmp-2026-11-24-1" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, names[i]);
                ASSERT(mkdir(p, 0700) == 0);
                _cleanup_free_ char *fp = xasprintf("%s/x.csv", p);
                FILE *f = fopen(fp, "w");
                fclose(f);
        }
        unsigned deleted = 0;
        ASSERT_OK(report_retention(dir, (LocalDate) { 2026, 11, 24 }, 30, &deleted));
        ASSERT_EQ_INT(deleted, 1);
        const bool kept[] = { false, true, true, true, true, false };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, names[i]);
                ASSERTF((access(p, F_OK) == 0) == kept[i], "%s", names[i]);
        }
        test_rm_rf(dir);
}

/* ---- The builder on a known history --------------------------------------------------------- */

static void exec_ok(Db *db, const char *sql, const DbValue *p, size_t n) {
        int r = db_exec(db, sql, p, n);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
}

static void add_client(Db *db, const char *id, const char *name) {
        exec_ok(db, "INSERT INTO gazelle_clients (external_id, company_name, synced_at) VALUES ($1, $2, $3)",
                DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(name), DBV_TEXT_OR_NULL("2026-11-01T00:00:00.000000Z")));
}

static void add_piano(Db *db, const char *id, const char *client, const char *make, const char *serial) {
        exec_ok(db,
                "INSERT INTO gazelle_pianos (external_id, client_external_id, make, model, serial_number, type, year, "
                "location, synced_at) VALUES ($1, $2, $3, 'D-274', $4, 'GRAND', 1995, 'Salle 3', $5)",
                DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(client), DBV_TEXT_OR_NULL(make),
                          DBV_TEXT_OR_NULL(serial), DBV_TEXT_OR_NULL("2026-11-01T00:00:00.000000Z")));
}

static void add_entry(Db *db, const char *id, const char *at, const char *type, const char *summary,
                      const char *comment, const char *client, const char *piano, const char *user, bool deleted) {
        exec_ok(db,
                "INSERT INTO gazelle_timeline_entries (external_id, occurred_at, type, summary, comment, "
                "client_external_id, piano_external_id, user_external_id, synced_at, deleted_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                DB_PARAMS(DBV_TEXT_OR_NULL(id), DBV_TEXT_OR_NULL(at), DBV_TEXT_OR_NULL(type), DBV_TEXT_OR_NULL(summary),
                          DBV_TEXT_OR_NULL(comment), DBV_TEXT_OR_NULL(client), DBV_TEXT_OR_NULL(piano),
                          DBV_TEXT_OR_NULL(user), DBV_TEXT_OR_NULL("2026-11-01T00:00:00.000000Z"),
                          deleted ? DBV_TEXT_OR_NULL("2026-11-02T00:00:00.000000Z") : DB_NULL));
}

#define SVC "SERVICE_ENTRY_MANUAL"
#define MES "PIANO_MEASUREMENT"
#define UQAM "cli_sos6RK8t4htOApiM"
#define VDI "cli_9UMLkteep8EsISbG"
#define NICK "usr_HcCiFk7o0vZ9xAI0"
#define JP "usr_ReUSmIJmBF86ilY1"

static void fill_history(Db *db) {
        add_client(db, UQAM, "UQAM");
        add_client(db, "cli_uqampav", "Uqàm — Pavillon de musique"); /* name pattern, accents folded */
        add_client(db, VDI, "École Vincent-d'Indy");
        add_client(db, "cli_other", "Jean Tremblay");
        add_piano(db, "ins_u1", UQAM, "Steinway", "S-1001");
        add_piano(db, "ins_u2", "cli_uqampav", "Yamaha", "Y-2002");
        add_piano(db, "ins_o1", "cli_other", "Kawai", "K-3003");
        exec_ok(db, "INSERT INTO gazelle_users (external_id, first_name, last_name, synced_at) VALUES "
                    "('usr_HcCiFk7o0vZ9xAI0', 'Nicolas', 'Lessard', '2026-11-01T00:00:00Z'), "
                    "('usr_unknown1', 'Paul', 'Martin', '2026-11-01T00:00:00Z')", DB_NO_PARAMS);

        /* 2026-03-10 (EDT from the 8th): a service and a measurement on u1 → one row with 21°, 45%. */
        add_entry(db, "tme_a1", "2026-03-10T15:00:00.000000Z", SVC, "Accord 440", "Housse enlevée par le client",
                  UQAM, "ins_u1", NICK, false);
        add_entry(db, "tme_a2", "2026-03-10T14:00:00.000000Z", MES, "Temperature 70°F, Humidity 45%", NULL, UQAM,
                  "ins_u1", NICK, false);
        /* The same service imported twice (tle_ first in the order): one row, the tme_ one's technician. */
        add_entry(db, "tle_b1", "2026-03-10T13:00:00.000000Z", SVC, "Réglage", NULL, UQAM, "ins_u2", "usr_unknown1",
                  false);
        add_entry(db, "tme_b1", "2026-03-10T12:00:00.000000Z", SVC, "Réglage", NULL, UQAM, "ins_u2", JP, false);
        /* Folded into that service: its humidity and its alert keyword still count. */
        add_entry(db, "tme_b2", "2026-03-10T11:00:00.000000Z", MES, "Humidité 20 %, réservoir vide", NULL, UQAM,
                  "ins_u2", JP, false);
        /* A measurement alone on its day: its own Mesure row. */
        add_entry(db, "tme_c1", "2026-02-01T16:00:00.000000Z", MES, "21 °C / 38 %", NULL, UQAM, "ins_u1", NICK, false);
        /* A service on Jan 14 23:30 Montréal (04:30Z on the 15th) and a measurement at 00:30 on the 15th:
         * different Montréal days, so not folded. */
        add_entry(db, "tme_d1", "2026-01-15T04:30:00.000000Z", SVC, "Urgence : fenêtre ouverte", NULL, UQAM, "ins_u1",
                  "usr_unknown1", false);
        add_entry(db, "tme_d2", "2026-01-15T05:30:00.000000Z", MES, "Humidité 30 %", NULL, UQAM, "ins_u1", NICK,
                  false);
        /* An entry without a piano, at the institution client. */
        add_entry(db, "tme_e1", "2025-12-01T15:00:00.000000Z", SVC, "Visite, \"tout\" est ok", NULL, UQAM, NULL, NULL,
                  false);
        /* Excluded: deleted, another client's piano, another type. */
        add_entry(db, "tme_x1", "2026-03-11T15:00:00.000000Z", SVC, "Supprimé", NULL, UQAM, "ins_u1", NICK, true);
        add_entry(db, "tme_x2", "2026-03-11T15:00:00.000000Z", SVC, "Autre client", NULL, "cli_other", "ins_o1", NICK,
                  false);
        add_entry(db, "tme_x3", "2026-03-11T15:00:00.000000Z", "NOTE", "Note", NULL, UQAM, "ins_u1", NICK, false);
}

static char **read_csv(const char *path, size_t *n_rows) {
        /* Flattened: each row as "f1|f2|…" for easy comparison. */
        FILE *f = fopen(path, "r");
        ASSERTF(f, "%s: %s", path, strerror(errno));
        unsigned char bom[3];
        ASSERT(fread(bom, 1, 3, f) == 3 && memcmp(bom, "\xEF\xBB\xBF", 3) == 0);
        char **rows = NULL;
        size_t n = 0;
        for (;;) {
                char **fields = NULL;
                size_t nf = 0;
                int r = csv_read_record(f, &fields, &nf);
                ASSERT_OK(r);
                if (r == 0)
                        break;
                size_t len = 1;
                for (size_t i = 0; i < nf; i++)
                        len += strlen(fields[i]) + 1;
                char *s = calloc(1, len);
                for (size_t i = 0; i < nf; i++) {
                        if (i)
                                strcat(s, "|");
                        strcat(s, fields[i]);
                }
                csv_record_free(fields);
                rows = realloc(rows, (n + 1) * sizeof(char *));
                rows[n++] = s;
        }
        fclose(f);
        *n_rows = n;
        return rows;
}

static void free_rows(char **rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(rows[i]);
        free(rows);
}

static void check_report(Db *db) {
        _cleanup_free_ char *dir = test_mkdtemp("report-build");
        _cleanup_free_ char *cfg = xasprintf("%s/config.json", dir);
        FILE *f = fopen(cfg, "w");
        fputs("{\"technicians\": [{\"id\": \"usr_HcCiFk7o0vZ9xAI0\", \"full_name\": \"Nicolas Lessard\", "
              "\"display_name\": \"Nick\"}, {\"id\": \"usr_ReUSmIJmBF86ilY1\", \"full_name\": \"Jean-Philippe Reny\", "
              "\"display_name\": \"JP\"}],"
              " \"institutions\": [{\"title\": \"UQAM\", \"client_ids\": [\"cli_sos6RK8t4htOApiM\"], \"name_patterns\": [\"UQAM\"]},"
              " {\"title\": \"Vincent d'Indy\", \"client_ids\": [\"cli_9UMLkteep8EsISbG\"]}]}",
              f);
        fclose(f);
        Settings s = {};
        char err[256];
        ASSERT_OKF(settings_load(&s, cfg, err, sizeof err), "%s", err);

        _cleanup_free_ char *out = xasprintf("%s/out", dir);
        ASSERT(mkdir(out, 0700) == 0);
        ReportResult res = {};
        int r = report_build(db, &s, out, NULL, &res);
        ASSERT_OKF(r, "%s", res.error);
        ASSERT_EQ_INT(res.n_tabs, 3);
        ASSERT_STREQ(res.tabs[0].file, "uqam.csv");
        ASSERT_STREQ(res.tabs[1].file, "vincent-d-indy.csv");
        ASSERT_STREQ(res.tabs[2].file, "alertes-maintenance.csv");
        ASSERT_EQ_INT(res.folded, 2);
        ASSERT_EQ_INT(res.duplicates, 1);

        size_t n;
        _cleanup_free_ char *p0 = xasprintf("%s/uqam.csv", out);
        char **rows = read_csv(p0, &n);
        const char *expected[] = {
                "DateEvenement|TypeEvenement|Description|NomClient|Marque|Modele|NumeroSerie|TypePiano|Annee|Local|"
                "Technicien|MesureHumidite",
                "2026-03-10|Service|Accord 440 — Housse enlevée par le client|UQAM|Steinway|D-274|S-1001|Piano à "
                "queue|1995|Salle 3|Nick|21°, 45%",
                "2026-03-10|Service|Réglage|Uqàm — Pavillon de musique|Yamaha|D-274|Y-2002|Piano à queue|1995|Salle "
                "3|JP|20%",
                "2026-02-01|Mesure|21 °C / 38 %|UQAM|Steinway|D-274|S-1001|Piano à queue|1995|Salle 3|Nick|21°, 38%",
                "2026-01-15|Mesure|Humidité 30 %|UQAM|Steinway|D-274|S-1001|Piano à queue|1995|Salle 3|Nick|30%",
                "2026-01-14|Service|Urgence : fenêtre ouverte|UQAM|Steinway|D-274|S-1001|Piano à queue|1995|Salle "
                "3|Paul Martin|",
                "2025-12-01|Service|Visite, \"tout\" est ok|UQAM||||||||",
        };
        ASSERT_EQ_INT(n, ELEMENTSOF(expected));
        for (size_t i = 0; i < n; i++)
                ASSERT_STREQ(rows[i], expected[i]);
        free_rows(rows, n);
        ASSERT_EQ_INT(res.tabs[0].rows, ELEMENTSOF(expected) - 1);

        /* Vincent d'Indy: no entries → header only. */
        _cleanup_free_ char *p1 = xasprintf("%s/vincent-d-indy.csv", out);
        rows = read_csv(p1, &n);
        ASSERT_EQ_INT(n, 1);
        ASSERT_EQ_INT(res.tabs[1].rows, 0);
        free_rows(rows, n);

        _cleanup_free_ char *p2 = xasprintf("%s/alertes-maintenance.csv", out);
        rows = read_csv(p2, &n);
        ASSERT_EQ_INT(n, 4);
        ASSERT_CONTAINS(rows[0], "DateEvenement|Institution|TypeEvenement");
        ASSERT_CONTAINS(rows[0], "|MotCle");
        ASSERT_STREQ(rows[1], "2026-03-10|UQAM|Service|Accord 440 — Housse enlevée par le client|UQAM|Steinway|D-274|"
                              "S-1001|Piano à queue|1995|Salle 3|Nick|21°, 45%|housse enlevée");
        ASSERT_STREQ(rows[2], "2026-03-10|UQAM|Service|Réglage|Uqàm — Pavillon de musique|Yamaha|D-274|Y-2002|"
                              "Piano à queue|1995|Salle 3|JP|20%|réservoir vide");
        ASSERT_CONTAINS(rows[3], "2026-01-14|UQAM|Service|Urgence : fenêtre ouverte|");
        ASSERT_CONTAINS(rows[3], "|fenêtre ouverte");
        free_rows(rows, n);

        report_result_clear(&res);
        settings_clear(&s);
        test_rm_rf(dir);
}

TEST(build_sqlite) {
        _cleanup_free_ char *dir = test_mkdtemp("report-db");
        _cleanup_free_ char *path = xasprintf("%s/store.sqlite", dir);
        Db *db = NULL;
        ASSERT_OK(db_open_sqlite(path, &db));
        ASSERT_OKF(migrate_apply(db), "%s", db_error(db));
        fill_history(db);
        check_report(db);
        db_close(db);
        test_rm_rf(dir);
}

TEST(build_postgresql) {
        const char *url;
        TestPgAvailability a = test_pg_url(&url);
        if (a != TEST_PG_AVAILABLE) {
                test_skip_part("build_postgresql", "no TEST_DATABASE_URL");
                return;
        }
        _cleanup_free_ char *name = test_pg_create_database(url, "report");
        _cleanup_free_ char *conninfo = test_pg_conninfo_with_dbname(url, name);
        Db *db = NULL;
        ASSERT_OK(db_open_postgresql(conninfo, &db));
        ASSERT_OKF(migrate_apply(db), "%s", db_error(db));
        fill_history(db);
        check_report(db);
        db_close(db);
        test_pg_drop_database(url, name);
}

/* ---- JWT -------------------------------------------------------------------------------------- */

static char *b64url_decode(const char *s, size_t *len) {
        size_t n = strlen(s);
        char *t = calloc(1, n + 4);
        for (size_t i = 0; i < n; i++)
                t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
        while (n % 4)
                t[n++] = '=';
        unsigned char *out = calloc(1, n);
        int l = EVP_DecodeBlock(out, (unsigned char *) t, (int) n);
        ASSERT(l >= 0);
        size_t pad = 0;
        for (size_t i = n; i > 0 && t[i - 1] == '='; i--)
                pad++;
        free(t);
        *len = (size_t) l - pad;
        out[*len] = 0;
        return (char *) out;
}

TEST(jwt_rs256) {
        EVP_PKEY *pkey = EVP_RSA_gen(2048);
        ASSERT(pkey);
        BIO *bio = BIO_new(BIO_s_mem());
        ASSERT(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1);
        char *pem = NULL;
        long pem_len = BIO_get_mem_data(bio, &pem);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", "service_account");
        cJSON_AddStringToObject(j, "client_email", "rapport@test.iam.gserviceaccount.com");
        _cleanup_free_ char *pem_s = strndup(pem, (size_t) pem_len);
        cJSON_AddStringToObject(j, "private_key", pem_s);
        _cleanup_free_ char *json = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        BIO_free(bio);

        GoogleKey *k = NULL;
        char err[256] = "";
        ASSERT_OKF(google_key_parse(json, &k, err, sizeof err), "%s", err);
        _cleanup_free_ char *jwt = NULL;
        ASSERT_OK(google_jwt_sign(k, "http://127.0.0.1/token", GOOGLE_SHEETS_SCOPE, 1764000000 * USEC_PER_SEC, &jwt));

        char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        ASSERT(dot1 && dot2);
        _cleanup_free_ char *h64 = strndup(jwt, (size_t) (dot1 - jwt));
        _cleanup_free_ char *c64 = strndup(dot1 + 1, (size_t) (dot2 - dot1 - 1));
        size_t hl, cl, sl;
        _cleanup_free_ char *header = b64url_decode(h64, &hl), *claims = b64url_decode(c64, &cl);
        _cleanup_free_ char *sig = b64url_decode(dot2 + 1, &sl);
        ASSERT_STREQ(header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
        ASSERT_CONTAINS(claims, "\"iss\":\"rapport@test.iam.gserviceaccount.com\"");
        ASSERT_CONTAINS(claims, "\"scope\":\"https://www.googleapis.com/auth/spreadsheets\"");
        ASSERT_CONTAINS(claims, "\"aud\":\"http://127.0.0.1/token\"");
        ASSERT_CONTAINS(claims, "\"iat\":1764000000");
        ASSERT_CONTAINS(claims, "\"exp\":1764003600");

        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ASSERT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1);
        ASSERT_EQ_INT(EVP_DigestVerify(md, (unsigned char *) sig, sl, (unsigned char *) jwt, (size_t) (dot2 - jwt)), 1);
        /* A changed claim no longer verifies. */
        jwt[dot1 - jwt + 3] ^= 1;
        ASSERT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1);
        ASSERT(EVP_DigestVerify(md, (unsigned char *) sig, sl, (unsigned char *) jwt, (size_t) (dot2 - jwt)) != 1);
        EVP_MD_CTX_free(md);
        google_key_free(k);
        EVP_PKEY_free(pkey);
}

TEST(bad_keys) {
        GoogleKey *k = NULL;
        char err[256] = "";
        ASSERT_ERRNO(google_key_parse("not json", &k, err, sizeof err), -EINVAL);
        ASSERT_CONTAINS(err, "JSON");
        ASSERT_ERRNO(google_key_parse("{\"type\":\"service_account\",\"private_key\":\"x\"}", &k, err, sizeof err), -EINVAL);
        ASSERT_CONTAINS(err, "client_email");
        ASSERT_ERRNO(google_key_parse("{\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n"
                                      "-----END PRIVATE KEY-----\\n\"}", &k, err, sizeof err), -EINVAL);
        ASSERT_CONTAINS(err, "private_key");
        ASSERT(!strstr(err, "AAAA"));
}

int main(int argc, char **argv) {
        tz_init();
        static const TestCase cases[] = {
                TEST_CASE(humidity_formats), TEST_CASE(keywords),      TEST_CASE(csv_bytes),
                TEST_CASE(retention),        TEST_CASE(build_sqlite),  TEST_CASE(build_postgresql),
                TEST_CASE(jwt_rs256),        TEST_CASE(bad_keys),
        };
        return TEST_MAIN(cases, argc, argv);
}
