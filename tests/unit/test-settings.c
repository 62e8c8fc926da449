/* SPDX-License-Identifier: MIT */
/* test-settings.c — the JSON settings file: defaults, the shipped example, one-line errors
 * naming the key, technician lookup by id and alias, accent-insensitive institution match. */
#include "settings.h"
#include "test.h"
#include "util.h"

static char *write_temp(const char *dir, const char *json) {
        char *path = xasprintf("%s/config.json", dir);
        FILE *f = fopen(path, "we");
        ASSERT(f);
        fputs(json, f);
        fclose(f);
        return path;
}

static void expect_error(const char *json, const char *needle) {
        _cleanup_free_ char *dir = test_mkdtemp("settings");
        _cleanup_free_ char *path = write_temp(dir, json);
        Settings s;
        char error[512] = "";
        int r = settings_load(&s, path, error, sizeof error);
        ASSERTF(r == -EINVAL, "r=%d for %s", r, json);
        ASSERT_CONTAINS(error, needle);
        ASSERT_CONTAINS(error, path);
        ASSERT(!strchr(error, '\n'));
        test_rm_rf(dir);
}

TEST(defaults) {
        Settings s;
        char error[512] = "";
        unsetenv("REPORT_SPREADSHEET_ID");
        ASSERT_OK(settings_load(&s, NULL, error, sizeof error));
        ASSERT_EQ_INT(s.n_institutions, 3);
        ASSERT_STREQ(s.institutions[0].title, "UQAM");
        ASSERT_STREQ(s.institutions[1].title, "Vincent d'Indy");
        ASSERT_STREQ(s.institutions[2].title, "Place des Arts");
        ASSERT(s.maintenance_keywords[0]);
        ASSERT_EQ_INT(s.n_technicians, 0);
        ASSERT(!s.excluded.client_ids[0]); /* nothing excluded unless configured */
        ASSERT(s.transport == MAIL_TRANSPORT_AUTO);
        ASSERT_NULL(s.spreadsheet_id);
        settings_clear(&s);
}

TEST(example_file) {
        Settings s;
        char error[512] = "";
        _cleanup_free_ char *path = xasprintf("%s/../../units/config.example.json", TEST_FIXTURES_DIR);
        ASSERT_OKF(settings_load(&s, path, error, sizeof error), "%s", error);
        ASSERT_EQ_INT(s.n_technicians, 4);
        ASSERT_STREQ(settings_display_name(&s, "usr_HcCiFk7o0vZ9xAI0", NULL), "Nick");
        ASSERT_STREQ(settings_find_technician(&s, "nicolas lessard")->id, "usr_HcCiFk7o0vZ9xAI0");
        ASSERT_STREQ(settings_display_name(&s, "usr_unknown", "Inconnu"), "Inconnu");
        ASSERT_NULL(settings_find_technician(&s, ""));
        ASSERT_STREQ(s.spreadsheet_id, "1ZZsMrIT0BEwHKQ6-BKGzFoXR3k99zCEzixp0tsRKUj8");
        ASSERT_STREQ(s.fallback_email, "bureau@example.com");
        ASSERT(institution_matches(&s.excluded, "cli_PmqPUBTbPFeCMGmz", NULL));
        ASSERT(institution_matches(&s.excluded, "cli_other", "École de musique VINCENT D’INDY"));
        ASSERT(!institution_matches(&s.excluded, "cli_other", "Mme Tremblay"));
        settings_clear(&s);
}

TEST(errors_name_the_key) {
        expect_error("{\"technicians\": [{\"id\": \"usr_1\"}]}", "technicians[0].display_name");
        expect_error("{\"technicians\": [{\"id\": \"usr_1\", \"display_name\": \"A\", \"email\": \"nope\"}]}",
                     "technicians[0].email");
        expect_error("{\"technicians\": [{\"id\": \"u\", \"display_name\": \"A\"}, {\"id\": \"u\", \"display_name\": \"B\"}]}",
                     "technicians[1].id");
        expect_error("{\"institutions\": [{\"title\": \"X\"}]}", "institutions[0]: needs client_ids");
        expect_error("{\"institutions\": [{\"title\": \"A/B\", \"client_ids\": [\"c\"]}]}", "institutions[0].title");
        expect_error("{\"mail\": {\"transport\": \"pigeon\"}}", "mail.transport");
        expect_error("{\"mail\": {\"sender_emial\": \"a@b.c\"}}", "mail.sender_emial: unknown key");
        expect_error("{\"report\": {\"maintenance_keywords\": [\"\"]}}", "report.maintenance_keywords[0]");
        expect_error("{\"technicians\": [\n{,]}", "line 2: not valid JSON");
        expect_error("[]", "(top level): expected an object");
}

/* cJSON takes both silently: a key given twice (which one wins depends on the reader) and
 * bytes that are not UTF-8 (they would reach emails and D-Bus replies). */
TEST(duplicate_keys_and_invalid_utf8_refused) {
        expect_error("{\"mail\": {\"admin_email\": \"a@example.com\"}, \"mail\": {}}", "(top level): duplicate key \"mail\"");
        expect_error("{\"technicians\": [{\"id\": \"usr_a\", \"display_name\": \"A\"}, {\"id\": \"usr_b\", "
                     "\"display_name\": \"B\", \"email\": \"b@example.com\", \"email\": \"c@example.com\"}]}",
                     "technicians[1]: duplicate key \"email\"");
        expect_error("{\n  \"mail\": {\n    \"sender_name\": \"Piano-Tek \xe9\"\n  }\n}", "line 3: invalid UTF-8");
        expect_error("{\"mail\": {\"sender_name\": \"\xc3\"}}", "line 1: invalid UTF-8");
        expect_error("{\"mail\": {\"sender_name\": \"\xed\xa0\x80\"}}", "invalid UTF-8"); /* a surrogate, raw */

        /* Real accents are fine. */
        _cleanup_free_ char *dir = test_mkdtemp("settings");
        _cleanup_free_ char *path = write_temp(dir, "{\"mail\": {\"sender_name\": \"Piano-Tek Montréal\"}}");
        Settings st;
        char error[512] = "";
        ASSERT_OKF(settings_load(&st, path, error, sizeof error), "%s", error);
        ASSERT_STREQ(st.sender_name, "Piano-Tek Montréal");
        settings_clear(&st);
        test_rm_rf(dir);
}

TEST(missing_file_is_an_error) {
        Settings s;
        char error[512] = "";
        ASSERT_ERRNO(settings_load(&s, "/nonexistent/config.json", error, sizeof error), -ENOENT);
        ASSERT_CONTAINS(error, "/nonexistent/config.json");
}

TEST(fold) {
        _cleanup_free_ char *a = text_fold("Réservoir VIDE, Œuvre l’été À Ça");
        ASSERT_STREQ(a, "reservoir vide, oeuvre l'ete a ca");
        _cleanup_free_ char *b = text_fold("emoji 🎹 ok");
        ASSERT_STREQ(b, "emoji 🎹 ok");
}

int main(int argc, char **argv) {
        static const TestCase cases[] = {
                TEST_CASE(defaults), TEST_CASE(example_file), TEST_CASE(errors_name_the_key),
                TEST_CASE(missing_file_is_an_error), TEST_CASE(fold), TEST_CASE(duplicate_keys_and_invalid_utf8_refused),
        };
        return TEST_MAIN(cases, argc, argv);
}
