/* SPDX-License-Identifier: MIT */
/* test-config.c — the table of environment settings: defaults, values parsed into the
 * configuration, and every bad value refused by config_load() with one line naming the
 * variable and the accepted range — never echoing a URL that may carry a password. */
#include "config.h"
#include "test.h"
#include "util.h"

/* Every variable the table knows, cleared before each case. */
static const char *const vars[] = {
        "GAZELLE_BUS", "GAZELLE_CONFIG", "DATABASE_URL", "BACKUP_DIR", "BACKUP_KEEP", "BACKUP_SQLITE_PATH",
        "GAZELLE_ADMIN_GROUP", "GAZELLE_IDLE_EXIT_SEC", "GAZELLE_API_URL", "GAZELLE_TOKEN_URL",
        "GAZELLE_AUTHORIZE_URL", "GAZELLE_REDIRECT_URI", "GAZELLE_MAX_CONCURRENCY", "GAZELLE_HTTP_MAX_ATTEMPTS",
        "GAZELLE_HTTP_TIMEOUT_SEC", "GAZELLE_HTTP_CONNECT_TIMEOUT_SEC", "GAZELLE_HTTP_BUDGET_SEC",
        "GAZELLE_HTTP_BACKOFF_MS", "GAZELLE_HTTP_LOW_SPEED_SEC", "GAZELLE_SYNC_DELETE_MAX_PERCENT", "GAZELLE_API_KEY",
        "GAZELLE_CLIENT_ID", "GAZELLE_CLIENT_SECRET", "ALERTS_MAX_LATENESS", "SMTP_URL", "SMTP_USERNAME",
        "SMTP_PASSWORD", "SENDGRID_API_URL", "SENDGRID_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_TOKEN_URL",
        "SHEETS_API_URL", "REPORT_SPREADSHEET_ID", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY",
};

static char *env_reset(void) {
        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                unsetenv(vars[i]);
        char *dir = test_mkdtemp("config");
        setenv("XDG_STATE_HOME", dir, 1);
        _cleanup_free_ char *xdg = xasprintf("%s/xdg-config", dir);
        setenv("XDG_CONFIG_HOME", xdg, 1); /* no config.json there: built-in defaults */
        return dir;
}

TEST(defaults) {
        _cleanup_free_ char *dir = env_reset();
        _cleanup_(config_clear) Config c = {};
        ASSERT_OKF(config_load(&c, BUS_USER), "%s", c.error);
        ASSERT_EQ_INT(c.backup_keep, 10);
        ASSERT_EQ_INT(c.gazelle_max_concurrency, 2);
        ASSERT_EQ_INT(c.http_max_attempts, 6);
        ASSERT_EQ_INT(c.http_timeout_sec, 120);
        ASSERT_EQ_INT(c.http_backoff_ms, 500);
        ASSERT_EQ_INT(c.sync_delete_max_percent, 10);
        ASSERT_EQ_INT(c.alerts_max_lateness, 4 * 3600 * USEC_PER_SEC);
        ASSERT_STREQ(c.admin_group, "gazelle-admin");
        ASSERT_STREQ(c.gazelle_api_url, "https://gazelleapp.io/graphql/private/");
        ASSERT_STREQ(c.sendgrid_api_url, "https://api.sendgrid.com");
        ASSERT_NULL(c.smtp_url);
        ASSERT_NULL(c.database_url);
        _cleanup_free_ char *backups = xasprintf("%s/gazelle-scheduler/backups", dir);
        ASSERT_STREQ(c.backup_dir, backups);
        test_rm_rf(dir);
}

static char *write_config(const char *dir, const char *json) {
        char *path = xasprintf("%s/config.json", dir);
        FILE *f = fopen(path, "we");
        ASSERT(f);
        fputs(json, f);
        fclose(f);
        return path;
}

TEST(values) {
        _cleanup_free_ char *dir = env_reset();
        _cleanup_free_ char *json = write_config(dir, "{\"mail\": {\"sender_email\": \"gs@example.com\"}}");
        setenv("GAZELLE_CONFIG", json, 1);
        setenv("GAZELLE_MAX_CONCURRENCY", "16", 1);
        setenv("ALERTS_MAX_LATENESS", "90min", 1);
        setenv("GAZELLE_SYNC_DELETE_MAX_PERCENT", "0", 1);
        setenv("GAZELLE_HTTP_MAX_ATTEMPTS", "1", 1);
        setenv("SMTP_URL", "smtps://user:pw@mail.example.com:465", 1);
        setenv("REPORT_SPREADSHEET_ID", "override-id", 1);
        setenv("GAZELLE_API_URL", "http://127.0.0.1:9/graphql/private/", 1);
        _cleanup_(config_clear) Config c = {};
        ASSERT_OKF(config_load(&c, BUS_USER), "%s", c.error);
        ASSERT_EQ_INT(c.gazelle_max_concurrency, 16);
        ASSERT_EQ_INT(c.alerts_max_lateness, 90 * 60 * USEC_PER_SEC);
        ASSERT_EQ_INT(c.sync_delete_max_percent, 0);
        ASSERT_EQ_INT(c.http_max_attempts, 1);
        ASSERT_STREQ(c.smtp_url, "smtps://user:pw@mail.example.com:465");
        ASSERT_STREQ(c.settings.spreadsheet_id, "override-id");
        ASSERT_STREQ(c.gazelle_api_url, "http://127.0.0.1:9/graphql/private/");
        test_rm_rf(dir);
}

typedef struct Bad {
        const char *name, *value;
        const char *expect; /* in the error line besides the name */
} Bad;

/* The audit's ten values first, then one of each kind. */
static const Bad bad_values[] = {
        { "GAZELLE_MAX_CONCURRENCY", "0", "expected 1 to 16" },
        { "GAZELLE_MAX_CONCURRENCY", "17", "expected 1 to 16" },
        { "GAZELLE_MAX_CONCURRENCY", "abc", "expected 1 to 16" },
        { "GAZELLE_MAX_CONCURRENCY", "-2", "expected 1 to 16" },
        { "ALERTS_MAX_LATENESS", "garbage", "expected 1s to 7d" },
        { "ALERTS_MAX_LATENESS", "-1h", "expected 1s to 7d" },
        { "ALERTS_MAX_LATENESS", "99999999999999h", "expected 1s to 7d" },
        { "GAZELLE_SYNC_DELETE_MAX_PERCENT", "200", "expected 0 to 100" },
        { "GAZELLE_HTTP_MAX_ATTEMPTS", "0", "expected 1 to 20" },
        { "SMTP_URL", "ftp://user:PASSWORD@host", "scheme ftp:// refused (expected smtp://HOST[:PORT] or smtps://" },
        { "SMTP_URL", "PASSWORD", "expected smtp://" },
        { "GAZELLE_HTTP_TIMEOUT_SEC", "99999999999999999999999", "out of range" },
        { "ALERTS_MAX_LATENESS", "8d", "out of range (expected 1s to 7d)" },
        { "ALERTS_MAX_LATENESS", "0s", "out of range" },
        { "BACKUP_KEEP", "1001", "expected 1 to 1000" },
        { "BACKUP_DIR", "relative/dir", "not an absolute path" },
        { "GAZELLE_API_URL", "http://gazelle.example.com/", "URL refused" },
        { "SENDGRID_API_URL", "ftp://x", "URL refused" },
        { "GAZELLE_BUS", "session", "expected one of user|system" },
        { "GAZELLE_ADMIN_GROUP", "a b", "not a valid group name" },
        { "DATABASE_URL", "mysql://u:PASSWORD@h/db", "not a PostgreSQL connection string" },
        { "REPORT_SPREADSHEET_ID", "two words", "one word" },
        { "GAZELLE_MAX_CONCURRENCY", "3\nsecond line", "not a whole number" },
};

TEST(bad_values_refused) {
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                const Bad *b = &bad_values[i];
                _cleanup_free_ char *dir = env_reset();
                setenv(b->name, b->value, 1);
                _cleanup_(config_clear) Config c = {};
                int r = config_load(&c, BUS_USER);
                ASSERTF(r == -EINVAL, "%s=%s accepted", b->name, b->value);
                ASSERTF(strncmp(c.error, b->name, strlen(b->name)) == 0, "%s=%s: error does not start with the name: %s",
                        b->name, b->value, c.error);
                ASSERT_CONTAINS(c.error, b->expect);
                ASSERTF(!strchr(c.error, '\n'), "%s: more than one line: %s", b->name, c.error);
                ASSERTF(!strstr(c.error, "PASSWORD"), "%s: the error echoes a secret: %s", b->name, c.error);
                test_rm_rf(dir);
        }
}

/* Mail settings that only work together are refused at start, not when the first email goes. */
TEST(mail_settings_together) {
        static const struct {
                const char *json, *env, *expect;
        } cases[] = {
                { "{\"mail\": {\"transport\": \"sendgrid\", \"sender_email\": \"gs@example.com\"}}", NULL,
                  "mail.transport=sendgrid: SENDGRID_API_KEY (credential sendgrid-api-key) is not set" },
                { "{\"mail\": {\"transport\": \"smtp\", \"sender_email\": \"gs@example.com\"}}", NULL,
                  "mail.transport=smtp: SMTP_URL is not set" },
                { "{}", "SENDGRID_API_KEY", "mail.sender_email: required to send through SendGrid" },
                { "{}", "SMTP_URL", "mail.sender_email: required to send through SMTP" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *dir = env_reset();
                _cleanup_free_ char *json = write_config(dir, cases[i].json);
                setenv("GAZELLE_CONFIG", json, 1);
                if (cases[i].env)
                        setenv(cases[i].env, streq(cases[i].env, "SMTP_URL") ? "smtps://mail.example.com" : "key-1234", 1);
                _cleanup_(config_clear) Config c = {};
                ASSERT_ERRNO(config_load(&c, BUS_USER), -EINVAL);
                ASSERT_CONTAINS(c.error, cases[i].expect);
                test_rm_rf(dir);
        }
        /* The outbox needs neither. */
        _cleanup_free_ char *dir = env_reset();
        _cleanup_free_ char *json = write_config(dir, "{\"mail\": {\"transport\": \"outbox\"}}");
        setenv("GAZELLE_CONFIG", json, 1);
        setenv("SMTP_URL", "smtps://mail.example.com", 1);
        _cleanup_(config_clear) Config c = {};
        ASSERT_OKF(config_load(&c, BUS_USER), "%s", c.error);
        test_rm_rf(dir);
}

/* A credential that is there but unreadable fails at start, naming it. */
TEST(unreadable_credential) {
        if (geteuid() == 0)
                return; /* root reads a 0000 file */
        _cleanup_free_ char *dir = env_reset();
        _cleanup_free_ char *creds = xasprintf("%s/creds", dir), *key = xasprintf("%s/gazelle-client-secret", creds);
        ASSERT(mkdir(creds, 0700) == 0);
        FILE *f = fopen(key, "we");
        ASSERT(f);
        fputs("secret\n", f);
        fclose(f);
        ASSERT(chmod(key, 0) == 0);
        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        _cleanup_(config_clear) Config c = {};
        ASSERT_ERRNO(config_load(&c, BUS_USER), -EINVAL);
        ASSERT_CONTAINS(c.error, "credential gazelle-client-secret: cannot be read");
        unsetenv("CREDENTIALS_DIRECTORY");
        test_rm_rf(dir);
}

int main(int argc, char **argv) {
        static const TestCase cases[] = {
                TEST_CASE(defaults),
                TEST_CASE(values),
                TEST_CASE(bad_values_refused),
                TEST_CASE(mail_settings_together),
                TEST_CASE(unreadable_credential),
        };
        return TEST_MAIN(cases, argc, argv);
}
