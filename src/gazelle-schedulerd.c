/* SPDX-License-Identifier: MIT */
/* gazelle-schedulerd.c — the daemon's entry point, outside the library: options, then the
 * context (daemon.c), the bus object (bus-api.c) and the loop. */
#include <getopt.h>
#include <sys/stat.h>

#include "bus-api.h"
#include "bus-errors.h"
#include "daemon.h"
#include "journal.h"

/* 0 to serve, 1 when done (help, version), -EINVAL on a bad option. */
static int parse_argv(int argc, char **argv, BusScope *scope) {
        static const struct option options[] = {
                { "system", no_argument, NULL, 's' },
                { "user", no_argument, NULL, 'u' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 's':
                        *scope = BUS_SYSTEM;
                        break;
                case 'u':
                        *scope = BUS_USER;
                        break;
                case 'h':
                        printf("Usage: gazelle-schedulerd [--system|--user]\n\n"
                               "D-Bus service " BUS_NAME " (RunTask, GetLogs, GetTaskLogs, ListTasks, Subscribe).\n"
                               "Normally bus-activated through gazelle-schedulerd.service; exits after\n"
                               "GAZELLE_IDLE_EXIT_SEC (30) idle seconds. See gazelle-schedulerd(8).\n");
                        return 1;
                case 'V':
                        printf("gazelle-schedulerd %s\n", GAZELLE_VERSION);
                        return 1;
                default:
                        return -EINVAL;
                }
        return 0;
}

static int run(int argc, char **argv) {
        BusScope scope = config_default_bus();
        int r = parse_argv(argc, argv, &scope);
        if (r != 0)
                return r < 0 ? r : 0;

        _cleanup_(context_clear) Context c = {};
        r = context_init(&c, scope);
        if (r < 0)
                return r;
        r = bus_api_register(&c);
        if (r < 0)
                return log_error_errno(r, "Failed to register the D-Bus object: %m");
        return daemon_serve(&c);
}

int main(int argc, char **argv) {
        tz_init();
        log_set_identifier("gazelle-schedulerd");
        umask(0077);
        int r = run(argc, argv);
        /* 2: bad option or configuration (nothing to retry), 1: any other failure. */
        return r == -EINVAL ? 2 : r < 0 ? 1 : 0;
}
