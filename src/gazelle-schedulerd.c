/* SPDX-License-Identifier: MIT */
/* gazelle-schedulerd.c — the daemon's entry point, outside the library: options, then the
 * context (daemon.c), the bus object (bus-api.c) and the loop. */
#include <getopt.h>
#include <sys/stat.h>

#include "bus-api.h"
#include "bus-errors.h"
#include "daemon.h"
#include "journal.h"
#include "manager.h"

/* How long a daemon that cannot serve keeps its name to answer the calls queued for it. */
#define REFUSE_USEC (2 * USEC_PER_SEC)

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

/* The configuration is invalid: nothing can be served, but every call must still be answered.
 * A bus-activated service that exits before taking its name leaves its callers waiting for
 * their own timeout (the bus is never told the start failed): take the name, answer each call
 * queued for it with the reason, give the name back, answer what raced that, exit. */
static int answer_unconfigured(BusScope scope, const char *why) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r = manager_bus_open(scope, &bus);
        if (r >= 0)
                r = sd_bus_request_name(bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to take the bus name %s to answer callers: %m", BUS_NAME);

        usec_t end = now_monotonic() + REFUSE_USEC;
        bool released = false;
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                r = sd_bus_process(bus, &m);
                if (r < 0)
                        return log_error_errno(r, "Failed to process the bus: %m");
                uint8_t type = 0;
                if (m && sd_bus_message_get_type(m, &type) >= 0 && type == SD_BUS_MESSAGE_METHOD_CALL)
                        (void) bus_reply_errorf(m, BUS_ERROR_INVALID_CONFIGURATION,
                                                "gazelle-schedulerd cannot start, the configuration is invalid: %s. "
                                                "Fix it (gazelle-scheduler check-config says what is in effect), "
                                                "then retry.", why);
                if (r > 0)
                        continue;
                usec_t now = now_monotonic();
                if (released)
                        return 0;
                if (now >= end) {
                        (void) sd_bus_release_name(bus, BUS_NAME);
                        released = true;
                        continue;
                }
                r = sd_bus_wait(bus, end - now);
                if (r < 0)
                        return log_error_errno(r, "Failed to wait for the bus: %m");
        }
}

static int run(int argc, char **argv) {
        BusScope scope = config_default_bus();
        int r = parse_argv(argc, argv, &scope);
        if (r != 0)
                return r < 0 ? r : 0;

        _cleanup_(context_clear) Context c = {};
        r = context_init(&c, scope);
        if (r == -EINVAL && !c.bus) {
                (void) answer_unconfigured(scope, c.config.error);
                return r;
        }
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
