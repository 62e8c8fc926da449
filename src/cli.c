/* SPDX-License-Identifier: MIT */
/* cli.c — `gazelle-scheduler` commands: argument parsing and dispatch. Each command loads the
 * configuration first, so a bad setting fails with one line before any work (exit 2). */
#include "cli.h"

#include <getopt.h>

#include "backup.h"
#include "check-config.h"
#include "restore.h"
#include "client.h"
#include "config.h"
#include "gazelle.h"
#include "journal.h"
#include "migrate.h"
#include "notify.h"
#include "runner.h"
#include "task-run.h"
#include "slot-guard.h"
#include "store.h"
#include "tasks.h"
#include "timeutil.h"

#define SLOT_LINE_MAX 64

static void help(void) {
        printf("Usage: gazelle-scheduler [--system|--user] COMMAND [ARGS…]\n"
               "\n"
               "Piano-Tek's scheduled Gazelle jobs, run by systemd timers.\n"
               "\n"
               "Commands:\n"
               "  run TASK [--full] [--dry-run]  Run a task in the foreground (what the units call)\n"
               "      alerts: [--target-date YYYY-MM-DD] [--no-sync]  alert about that day (default: the\n"
               "                                  day after the 16:00 slot); use the store without syncing\n"
               "  start TASK [--user-email E] [--wait [--timeout SECONDS]]\n"
               "                                  Ask gazelle-schedulerd to run a task (RunTask); print\n"
               "                                  the run id, with --wait also how it ended\n"
               "  logs [-n N] [--task TASK] [--json] [--watch [SECONDS]]\n"
               "                                  Journal des tâches: the latest runs (default 20)\n"
               "  status [--json]                 Per task: schedule, next run, last run, last success;\n"
               "                                  exit 1 when a task has not succeeded for 26 h\n"
               "  should-run TASK                 ExecCondition= guard: exit 1 when the timer's slot already\n"
               "                                  succeeded today, 0 otherwise\n"
               "  auth [--code - | --refresh-token -]\n"
               "                                  Gazelle OAuth: print the authorization URL, exchange a\n"
               "                                  code, or import a refresh token from stdin\n"
               "  migrate                         Apply pending schema migrations to the store\n"
               "  restore FILE [--dry-run]        Verify a backup and put it back into the store\n"
               "  slot TASK                       Read UTC epoch microseconds on stdin, print each one's\n"
               "                                  Montréal slot day (DST checks)\n"
               "  notify-failure UNIT             Mail the administrator about a failed unit (OnFailure=)\n"
               "  check-config                    Validate every setting, the credentials and the store;\n"
               "                                  print what is in effect, secrets masked\n"
               "\n"
               "Tasks: %s\n"
               "\n"
               "Options:\n"
               "  --system        Talk to the system manager and system bus (default for root)\n"
               "  --user          Talk to the user manager and session bus\n"
               "  -h --help       Show this help\n"
               "     --version    Show the version\n"
               "\n"
               "Exit status: 0 success or skipped, 1 task failed, 2 usage or configuration error.\n"
               "See gazelle-scheduler(1) and journalctl -t gazelle-scheduler.\n",
               task_valid_names());
}

/* What `COMMAND --help` prints (and a usage error repeats on stderr). */
#define RUN_USAGE                                                                                           \
        "Usage: gazelle-scheduler run TASK [--full] [--dry-run] [--target-date YYYY-MM-DD] [--no-sync]\n"   \
        "\n"                                                                                                 \
        "Run TASK in the foreground, as its unit does, and record it in scheduler_logs.\n"                   \
        "  --full                     sync: fetch the whole timeline history, not only the last 30 days\n"  \
        "  --dry-run                  fetch and build everything, write and send nothing\n"                 \
        "  --target-date YYYY-MM-DD   alerts: the day to alert about (default: the day after the 16:00\n"   \
        "                             slot; a catch-up later than ALERTS_MAX_LATENESS is skipped)\n"        \
        "  --no-sync                  alerts: use the store as it is, without refreshing the day\n"         \
        "Exit status: 0 success, warning or skipped, 1 failed, 2 usage or configuration error.\n"
#define SHOULD_RUN_USAGE                                                                                    \
        "Usage: gazelle-scheduler should-run TASK\n"                                                        \
        "\n"                                                                                                 \
        "ExecCondition= guard of the units: exit 1 when the timer's Montréal slot already has a\n"           \
        "successful scheduled run (the start is then skipped), 0 otherwise.\n"
#define MIGRATE_USAGE                                                                                       \
        "Usage: gazelle-scheduler migrate\n"                                                                \
        "\n"                                                                                                 \
        "Apply the pending schema migrations to the store (every command also does it on first use).\n"
#define RESTORE_USAGE                                                                                       \
        "Usage: gazelle-scheduler restore FILE [--dry-run]\n"                                               \
        "\n"                                                                                                 \
        "Verify the backup FILE (db_backup_YYYYMMDD_HHMMSS.sqlite, from a SQLite or a PostgreSQL store)\n"  \
        "and put it into the configured store (SQLite, or PostgreSQL with DATABASE_URL) in one\n"           \
        "transaction, with every task locked out. The file must be a gazelle-scheduler backup (its\n"        \
        "migrations, tables and columns are checked); an older one is migrated forward. The store in\n"    \
        "place is first kept as BACKUP_DIR/pre-restore-YYYYMMDD_HHMMSS.sqlite. A file that fails\n"         \
        "verification changes nothing.\n"                                                                    \
        "\n"                                                                                                 \
        "  --dry-run   Print, per table, the rows now and the rows after; change nothing\n"
#define AUTH_USAGE                                                                                          \
        "Usage: gazelle-scheduler auth                    Print the authorization URL\n"                    \
        "       gazelle-scheduler auth --code -           Exchange the code read from stdin for tokens\n"   \
        "       gazelle-scheduler auth --refresh-token -  Import a refresh token from stdin\n"              \
        "\n"                                                                                                 \
        "Importing a refresh token exchanges it at once: Gazelle then stops accepting it, so the\n"         \
        "system that used it (the old scheduler) loses its access. Stop that system first; to go\n"         \
        "back to it, authorize it again in Gazelle.\n"
#define SLOT_USAGE                                                                                          \
        "Usage: gazelle-scheduler slot TASK < usec-per-line\n"                                              \
        "\n"                                                                                                 \
        "Read UTC epoch microseconds on stdin, print each one with its Montréal slot day (DST checks).\n"
#define NOTIFY_FAILURE_USAGE                                                                                \
        "Usage: gazelle-scheduler notify-failure UNIT\n"                                                    \
        "\n"                                                                                                 \
        "Mail mail.admin_email about the failed UNIT: its last run's message and journal lines\n"           \
        "(what gazelle-notify-failure@.service runs, from the tasks' OnFailure=).\n"

static int usage_error(const char *usage) {
        fputs(usage, stderr);
        return EXIT_USAGE;
}

static const Task *task_arg(const char *name) {
        const Task *t = task_lookup(name);
        if (!t)
                print_error("Unknown task '%.64s'. Valid tasks: %s.", name, task_valid_names());
        return t;
}

static int load_config(Config *c, BusScope bus) {
        int r = config_load(c, bus);
        if (r < 0)
                print_error("Invalid configuration: %s", c->error);
        return r;
}

static int cmd_run(BusScope bus, int argc, char **argv) {
        static const struct option options[] = {
                { "full", no_argument, NULL, 'f' },
                { "dry-run", no_argument, NULL, 'n' },
                { "target-date", required_argument, NULL, 't' },
                { "no-sync", no_argument, NULL, 'S' },
                {},
        };
        RunOptions ro = {};
        int c;

        optind = 0; /* 0: re-initialise getopt, whose "+" mode from cli_main() must not stick */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'f':
                        ro.full = true;
                        break;
                case 'n':
                        ro.dry_run = true;
                        break;
                case 't':
                        if (parse_local_date(optarg, &ro.target_date) < 0) {
                                print_error("--target-date=%.32s: expected YYYY-MM-DD", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'S':
                        ro.no_sync = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind != argc - 1)
                return usage_error(RUN_USAGE);
        const Task *t = task_arg(argv[optind]);
        if (!t)
                return EXIT_USAGE;
        if ((ro.target_date.year > 0 || ro.no_sync) && t->id != TASK_RV_ALERTS) {
                fprintf(stderr, "--target-date and --no-sync only apply to rv_alerts.\n");
                return EXIT_USAGE;
        }
        _cleanup_(config_clear) Config cfg = {};
        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        return task_run(&cfg, t, &ro);
}

static int cmd_should_run(BusScope bus, int argc, char **argv) {
        if (argc != 2)
                return usage_error(SHOULD_RUN_USAGE);
        const Task *t = task_arg(argv[1]);
        if (!t)
                return EXIT_USAGE;
        _cleanup_(config_clear) Config cfg = {};
        /* A configuration error does not stop the guard: it may still decide from the slot
         * stamp, and otherwise says so and lets the run report the error. */
        int r = config_load(&cfg, bus);
        return slot_guard_should_run(&cfg, r, t);
}

static int cmd_migrate(BusScope bus, int argc, char **argv) {
        _cleanup_(config_clear) Config cfg = {};
        if (argc != 1)
                return usage_error(MIGRATE_USAGE);
        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        _cleanup_(db_closep) Db *db = NULL;
        int r = cfg.database_url ? db_open_postgresql(cfg.database_url, &db) : mkdir_p(cfg.state_dir, 0700);
        if (r >= 0 && !cfg.database_url)
                r = db_open_sqlite(cfg.sqlite_path, &db);
        if (r >= 0)
                r = migrate_apply(db);
        if (r < 0) {
                log_error_errno(r, "Migration failed: %s", db ? db_error(db) : strerror(-r));
                return EXIT_TASK_FAILED;
        }
        printf("%d migration(s) applied; schema at version %d (%s).\n", r, migrate_latest(db),
               cfg.database_url ? "PostgreSQL" : cfg.sqlite_path);
        return 0;
}

static int cmd_restore(BusScope bus, int argc, char **argv) {
        _cleanup_(config_clear) Config cfg = {};
        const char *path = NULL;
        bool dry_run = false;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--dry-run"))
                        dry_run = true;
                else if (!path && argv[i][0] != '-')
                        path = argv[i];
                else
                        return usage_error(RESTORE_USAGE);
        }
        if (!path)
                return usage_error(RESTORE_USAGE);
        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        return backup_restore(&cfg, path, dry_run);
}

/* A secret piped on stdin (never argv), trailing blanks stripped. */
static int read_stdin_secret(char **ret) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, stdin);
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = 0;
        if (n == 0)
                return -ENODATA;
        *ret = xstrdup(buf);
        explicit_bzero(buf, sizeof buf);
        return 0;
}

/* No option: the URL where a person authorizes the OAuth client. */
static int auth_print_url(const Config *cfg) {
        _cleanup_free_ char *id = NULL;
        int r = config_read_secret("gazelle-client-id", "GAZELLE_CLIENT_ID", &id);
        if (r < 0 || isempty(id)) {
                fprintf(stderr, "GAZELLE_CLIENT_ID (ou le credential gazelle-client-id) est requis.\n");
                return EXIT_USAGE;
        }
        _cleanup_free_ char *eid = http_escape(id), *eredir = http_escape(cfg->gazelle_redirect_uri);
        printf("%s?client_id=%s&response_type=code&redirect_uri=%s\n", cfg->gazelle_authorize_url, eid, eredir);
        fprintf(stderr, "Ouvrez cette adresse, autorisez l'accès, puis : echo CODE | gazelle-scheduler auth --code -\n");
        return 0;
}

static int cmd_auth(BusScope bus, int argc, char **argv) {
        static const struct option options[] = {
                { "code", required_argument, NULL, 'c' },
                { "refresh-token", required_argument, NULL, 'r' },
                {},
        };
        _cleanup_(config_clear) Config cfg = {};
        const char *code_arg = NULL, *rt_arg = NULL;
        bool rotated = false;
        int c;

        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        code_arg = optarg;
                        break;
                case 'r':
                        rt_arg = optarg;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (rt_arg && !streq(rt_arg, "-")) {
                fprintf(stderr, "--refresh-token takes '-' (read it from stdin): a secret never goes in argv.\n");
                return EXIT_USAGE;
        }
        /* Any local user can read a running process's argv: the code comes on stdin too. */
        if (code_arg && !streq(code_arg, "-")) {
                fprintf(stderr, "--code takes '-' and reads the code from stdin (echo CODE | gazelle-scheduler auth "
                        "--code -): a secret never goes in argv.\n");
                return EXIT_USAGE;
        }
        if (code_arg && rt_arg) {
                fprintf(stderr, "--code and --refresh-token exclude each other.\n");
                return EXIT_USAGE;
        }
        if (!code_arg && !rt_arg)
                return auth_print_url(&cfg);

        _cleanup_(db_closep) Db *db = NULL;
        int r = store_open(&cfg, &db);
        if (r < 0) {
                print_error("Impossible d'ouvrir la base : %s", db ? db_error(db) : strerror(-r));
                return EXIT_TASK_FAILED;
        }
        char error[GAZELLE_ERROR_MAX] = "";
        _cleanup_(gazelle_client_freep) GazelleClient *g = NULL;
        r = gazelle_client_new(&cfg, db, &g, error, sizeof error);
        if (r < 0) {
                print_error("%s", error);
                return EXIT_USAGE;
        }
        if (gazelle_uses_api_key(g)) {
                fprintf(stderr, "GAZELLE_API_KEY est défini : le mode clé API n'utilise pas de jetons OAuth.\n");
                return EXIT_USAGE;
        }
        if (code_arg) {
                _cleanup_(secret_freep) char *code = NULL;
                if (read_stdin_secret(&code) < 0) {
                        fprintf(stderr, "Aucun code lu sur l'entrée standard.\n");
                        return EXIT_USAGE;
                }
                r = gazelle_exchange_code(g, code, error, sizeof error);
        } else {
                _cleanup_free_ char *rt = NULL;
                if (read_stdin_secret(&rt) < 0) {
                        fprintf(stderr, "Aucun jeton lu sur l'entrée standard.\n");
                        return EXIT_USAGE;
                }
                /* Validated at once (and the rotated one it may give back is kept). */
                r = gazelle_import_refresh_token(g, rt, &rotated, error, sizeof error);
                explicit_bzero(rt, strlen(rt));
        }
        if (r < 0) {
                print_error("%s", error);
                return EXIT_TASK_FAILED;
        }
        char exp[RFC3339_MAX];
        printf("Jetons Gazelle enregistrés dans la base ; accès valide jusqu'au %s.\n",
               format_local_rfc3339(gazelle_access_expires_at(g), exp));
        if (rotated)
                printf("Le jeton importé a été échangé et remplacé : Gazelle ne l'accepte plus, donc le système qui "
                       "l'utilisait (l'ancien planificateur) a perdu son accès à Gazelle. Arrêtez ses tâches "
                       "Gazelle ; pour lui rendre l'accès, il faudrait l'autoriser de nouveau dans Gazelle.\n");
        else if (rt_arg)
                printf("Gazelle n'a pas remplacé le jeton importé : le système qui l'utilisait (l'ancien "
                       "planificateur) y a encore accès, mais le premier des deux qui en recevra un nouveau coupera "
                       "l'autre. Arrêtez les tâches Gazelle de l'ancien système.\n");
        return 0;
}

static int cmd_slot(BusScope bus, int argc, char **argv) {
        char line[SLOT_LINE_MAX];
        if (argc != 2)
                return usage_error(SLOT_USAGE);
        const Task *t = task_arg(argv[1]);
        (void) bus;
        if (!t)
                return EXIT_USAGE;
        while (fgets(line, sizeof line, stdin)) {
                char *end;
                errno = 0;
                unsigned long long u = strtoull(line, &end, 10);
                if (errno || end == line || (*end && *end != '\n')) {
                        print_error("Not a number of microseconds: %.32s", line);
                        return EXIT_USAGE;
                }
                char d[16];
                printf("%llu %s\n", u, format_local_date(slot_day_of(u, t->slot_hour, t->slot_minute), d));
        }
        return 0;
}

static int cmd_notify_failure(BusScope bus, int argc, char **argv) {
        if (argc != 2)
                return usage_error(NOTIFY_FAILURE_USAGE);
        _cleanup_(config_clear) Config cfg = {};
        if (config_load(&cfg, bus) < 0) {
                /* Still report the failure: the journal needs no configuration. */
                const Task *t = task_by_unit(argv[1]);
                LogContext log = { .task = t ? t->name : NULL };
                log_full(&log, LOG_ERR, 0, NULL, "error", NULL,
                         "Échec de %s (configuration invalide, pas de courriel : %s) : consultez journalctl -u %s",
                         argv[1], cfg.error, argv[1]);
                return EXIT_USAGE;
        }
        return notify_failure(&cfg, argv[1]);
}

static int cmd_help(BusScope bus, int argc, char **argv) {
        (void) bus, (void) argc, (void) argv;
        help();
        return 0;
}

typedef struct Command {
        const char *name;
        int (*run)(BusScope bus, int argc, char **argv);
        const char *usage; /* NULL: the command answers --help itself */
} Command;

static const Command commands[] = {
        { "run", cmd_run, RUN_USAGE },
        { "start", client_start, NULL },
        { "logs", client_logs, NULL },
        { "status", client_status, NULL },
        { "should-run", cmd_should_run, SHOULD_RUN_USAGE },
        { "migrate", cmd_migrate, MIGRATE_USAGE },
        { "restore", cmd_restore, RESTORE_USAGE },
        { "auth", cmd_auth, AUTH_USAGE },
        { "slot", cmd_slot, SLOT_USAGE },
        { "notify-failure", cmd_notify_failure, NOTIFY_FAILURE_USAGE },
        { "check-config", check_config_main, CHECK_CONFIG_USAGE },
        { "help", cmd_help, NULL },
};

/* -h or --help among a command's arguments (before a "--"). */
static bool wants_help(int argc, char **argv) {
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "-h") || streq(argv[i], "--help"))
                        return true;
        return false;
}

int cli_main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "system", no_argument, NULL, 's' },
                { "user", no_argument, NULL, 'u' },
                {},
        };
        BusScope bus = config_default_bus();
        int c;

        /* '+': stop at the command, its own options are parsed by the command. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("gazelle-scheduler %s\n", GAZELLE_VERSION);
                        return 0;
                case 's':
                        bus = BUS_SYSTEM;
                        break;
                case 'u':
                        bus = BUS_USER;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        const char *cmd = argv[optind];
        int cargc = argc - optind;
        char **cargv = argv + optind;

        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (!streq(cmd, commands[i].name))
                        continue;
                /* Before anything else (the configuration too): help always works. */
                if (commands[i].usage && wants_help(cargc, cargv)) {
                        fputs(commands[i].usage, stdout);
                        return 0;
                }
                return commands[i].run(bus, cargc, cargv);
        }
        print_error("Unknown command '%.64s'. See gazelle-scheduler --help.", cmd);
        return EXIT_USAGE;
}
