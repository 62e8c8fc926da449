/* SPDX-License-Identifier: MIT */
/* check-config.c — `gazelle-scheduler check-config`, what `nginx -t` is to nginx: loads and
 * validates every setting (the table of config.c and the JSON file), says which credentials
 * are present, whether the mail transport and the Gazelle client could be set up, and whether
 * the store can be reached, then prints what is in effect with every secret masked. It reads
 * and connects, never writes: a SQLite store that does not exist yet is not created. */
#include "check-config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "mail.h"
#include "migrate.h"
#include "redact.h"
#include "runner.h"
#include "store.h"
#include "util.h"


typedef struct Checks {
        const Secrets *secrets; /* every problem line passes the redaction step */
        unsigned problems;
} Checks;

static void problem(Checks *k, const char *fmt, ...) _printf_(2, 3);
static void problem(Checks *k, const char *fmt, ...) {
        va_list ap;
        _cleanup_free_ char *text = NULL;
        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                abort();
        va_end(ap);
        _cleanup_free_ char *safe = redact(k->secrets, text);
        printf("  problem: %s\n", safe);
        k->problems++;
}

static bool secret_present(const char *credential, const char *env) {
        _cleanup_free_ char *v = NULL;
        if (config_read_secret(credential, env, &v) < 0)
                return false;
        bool present = !isempty(v);
        if (v)
                explicit_bzero(v, strlen(v));
        return present;
}

static void check_gazelle(Checks *k) {
        if (secret_present("gazelle-api-key", "GAZELLE_API_KEY"))
                printf("  Gazelle: API key\n");
        else if (secret_present("gazelle-client-id", "GAZELLE_CLIENT_ID") &&
                 secret_present("gazelle-client-secret", "GAZELLE_CLIENT_SECRET"))
                printf("  Gazelle: OAuth client (id and secret; the tokens live in the store: gazelle-scheduler auth)\n");
        else
                problem(k, "Gazelle: neither GAZELLE_API_KEY nor GAZELLE_CLIENT_ID and GAZELLE_CLIENT_SECRET (or their "
                           "credentials) are set: sync and alerts will fail");
}

static void check_mail(const Config *c, Checks *k) {
        _cleanup_(mailer_freep) Mailer *m = NULL;
        char err[512] = "";
        if (mailer_new(c, NULL, &m, err, sizeof err) < 0) {
                problem(k, "mail: %s", err);
                return;
        }
        printf("  Mail: %s, from %s", mailer_transport(m), mailer_from_email(m));
        if (streq(mailer_transport(m), "outbox"))
                printf(" (written to %s%s, not sent)", c->settings.outbox_dir ?: c->state_dir,
                       c->settings.outbox_dir ? "" : "/outbox");
        printf("\n");
        if (!c->settings.admin_email)
                printf("  note: mail.admin_email is not set: failures are not mailed\n");
}

static void check_report(const Config *c, Checks *k) {
        bool key = secret_present("google-service-account.json", NULL);
        if (!key && c->google_application_credentials) {
                if (access(c->google_application_credentials, R_OK) < 0)
                        problem(k, "GOOGLE_APPLICATION_CREDENTIALS=%s: cannot be read (%m)",
                                c->google_application_credentials);
                else
                        key = true;
        }
        printf("  Report: %s, %s\n", key ? "Google key present" : "no Google key (CSV files only)",
               c->settings.spreadsheet_id ? "spreadsheet set" : "no spreadsheet id (CSV files only)");
}

/* Reachable, and at which schema version; nothing is created or migrated. */
static void check_store(const Config *c, Checks *k) {
        _cleanup_(db_closep) Db *db = NULL;
        int r;

        r = store_open_existing(c, &db);
        if (r == -ENOENT && !c->database_url) {
                printf("  Store: SQLite %s (not created yet: the first command that needs it creates it)\n",
                       c->sqlite_path);
                return;
        }
        const char *what = c->database_url ? "PostgreSQL" : c->sqlite_path;
        if (r < 0) {
                problem(k, "store %s cannot be reached: %s", what, db ? db_error(db) : strerror(-r));
                return;
        }
        int64_t version = 0;
        r = db_query_int(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, &version);
        if (r < 0)
                printf("  Store: %s reachable, no schema yet (the first command applies it)\n", what);
        else
                printf("  Store: %s reachable, schema version %" PRId64 " of %d%s\n", what, version, migrate_latest(db),
                       version < migrate_latest(db) ? " (the next command migrates it)" : "");
}

int check_config_main(BusScope bus, int argc, char **argv) {
        /* --help is answered by the dispatcher (cli.c), which knows CHECK_CONFIG_USAGE. */
        if (argc > 1) {
                fputs(CHECK_CONFIG_USAGE, stderr);
                return EXIT_USAGE;
        }

        _cleanup_(config_clear) Config cfg = {};
        if (config_load(&cfg, bus) < 0) {
                fprintf(stderr, "Invalid configuration: %s\n", cfg.error);
                return EXIT_USAGE;
        }
        Checks k = { .secrets = cfg.secrets };
        printf("Configuration valid (%s instance).\n", bus == BUS_SYSTEM ? "system" : "user");
        printf("  State directory: %s\n", cfg.state_dir);
        printf("  Settings file: %s\n", cfg.settings.path ?: "none (built-in defaults)");
        check_store(&cfg, &k);
        char why[512];
        if (private_dir_check("BACKUP_DIR", cfg.backup_dir, why, sizeof why) < 0)
                problem(&k, "%s", why);
        check_gazelle(&k);
        check_mail(&cfg, &k);
        check_report(&cfg, &k);
        printf("Environment settings (secrets masked):\n");
        config_print(&cfg, stdout);
        if (k.problems > 0) {
                printf("%u problem(s): see above.\n", k.problems);
                return EXIT_TASK_FAILED;
        }
        return 0;
}
