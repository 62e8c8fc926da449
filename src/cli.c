/* cli.c — `gazelle-scheduler` commands: argument parsing and dispatch. Each command loads the
 * configuration first, so a bad setting fails with one line before any work (exit 2). */
#include "cli.h"

#include <getopt.h>

#include "backup.h"
#include "client.h"
#include "config.h"
#include "gazelle.h"
#include "journal.h"
#include "migrate.h"
#include "notify.h"
#include "runner.h"
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
               "  auth [--code CODE | --refresh-token -]\n"
               "                                  Gazelle OAuth: print the authorization URL, exchange a\n"
               "                                  code, or import a refresh token from stdin\n"
               "  migrate                         Apply pending schema migrations to the store\n"
               "  restore FILE                    Verify a backup and put it back into the SQLite store\n"
               "  slot TASK                       Read UTC epoch microseconds on stdin, print each one's\n"
               "                                  Montréal slot day (DST checks)\n"
               "  notify-failure UNIT             Mail the administrator about a failed unit (OnFailure=)\n"
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

static const Task *task_arg(const char *name) {
        const Task *t = task_lookup(name);
        if (!t)
                fprintf(stderr, "Unknown task '%.64s'. Valid tasks: %s.\n", name, task_valid_names());
        return t;
}

static int load_config(Config *c, BusScope bus) {
        int r = config_load(c, bus);
        if (r < 0)
                fprintf(stderr, "Invalid configuration: %s\n", c->error);
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
                                fprintf(stderr, "--target-date=%.32s: expected YYYY-MM-DD\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'S':
                        ro.no_sync = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind != argc - 1) {
                fprintf(stderr, "Usage: gazelle-scheduler run TASK [--full] [--dry-run]\n");
                return EXIT_USAGE;
        }
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
        return runner_run(&cfg, t, &ro);
}

static int cmd_should_run(BusScope bus, int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "Usage: gazelle-scheduler should-run TASK\n");
                return EXIT_USAGE;
        }
        const Task *t = task_arg(argv[1]);
        if (!t)
                return EXIT_USAGE;
        _cleanup_(config_clear) Config cfg = {};
        if (load_config(&cfg, bus) < 0)
                return 0; /* the run itself reports the configuration error */
        return runner_should_run(&cfg, t);
}

static int cmd_migrate(BusScope bus, int argc, char **argv) {
        _cleanup_(config_clear) Config cfg = {};
        if (argc != 1) {
                fprintf(stderr, "Usage: gazelle-scheduler migrate\n");
                return EXIT_USAGE;
        }
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
        if (argc != 2) {
                fprintf(stderr, "Usage: gazelle-scheduler restore FILE\n");
                return EXIT_USAGE;
        }
        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        return backup_restore(&cfg, argv[1]);
}

static int cmd_auth(BusScope bus, int argc, char **argv) {
        _cleanup_(config_clear) Config cfg = {};
        if (load_config(&cfg, bus) < 0)
                return EXIT_USAGE;
        return gazelle_auth_main(&cfg, argc, argv);
}

static int cmd_slot(int argc, char **argv) {
        char line[SLOT_LINE_MAX];
        if (argc != 2) {
                fprintf(stderr, "Usage: gazelle-scheduler slot TASK < usec-per-line\n");
                return EXIT_USAGE;
        }
        const Task *t = task_arg(argv[1]);
        if (!t)
                return EXIT_USAGE;
        while (fgets(line, sizeof line, stdin)) {
                char *end;
                errno = 0;
                unsigned long long u = strtoull(line, &end, 10);
                if (errno || end == line || (*end && *end != '\n')) {
                        fprintf(stderr, "Not a number of microseconds: %.32s\n", line);
                        return EXIT_USAGE;
                }
                char d[16];
                printf("%llu %s\n", u, format_local_date(slot_day_of(u, t->slot_hour, t->slot_minute), d));
        }
        return 0;
}

static int cmd_notify_failure(BusScope bus, int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "Usage: gazelle-scheduler notify-failure UNIT\n");
                return EXIT_USAGE;
        }
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

        if (streq(cmd, "run"))
                return cmd_run(bus, cargc, cargv);
        if (streq(cmd, "start"))
                return client_start(bus, cargc, cargv);
        if (streq(cmd, "logs"))
                return client_logs(bus, cargc, cargv);
        if (streq(cmd, "status"))
                return client_status(bus, cargc, cargv);
        if (streq(cmd, "should-run"))
                return cmd_should_run(bus, cargc, cargv);
        if (streq(cmd, "migrate"))
                return cmd_migrate(bus, cargc, cargv);
        if (streq(cmd, "restore"))
                return cmd_restore(bus, cargc, cargv);
        if (streq(cmd, "auth"))
                return cmd_auth(bus, cargc, cargv);
        if (streq(cmd, "slot"))
                return cmd_slot(cargc, cargv);
        if (streq(cmd, "notify-failure"))
                return cmd_notify_failure(bus, cargc, cargv);
        if (streq(cmd, "help")) {
                help();
                return 0;
        }
        fprintf(stderr, "Unknown command '%.64s'. See gazelle-scheduler --help.\n", cmd);
        return EXIT_USAGE;
}
