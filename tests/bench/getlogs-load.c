/* SPDX-License-Identifier: MIT */
/* getlogs-load.c — load generator for tests/bench/bench-getlogs.sh: N synchronous GetLogs(LIMIT)
 * calls on one connection to the user bus ($DBUS_SESSION_BUS_ADDRESS), one at a time, and one
 * line of results: latency p50/p99/max in microseconds and calls per second. Forking busctl
 * per call would measure busctl's start-up instead of the daemon.
 *   getlogs-load [CALLS [LIMIT]]        defaults: 1000 calls, limit 20 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define BUS_NAME "com.piano_tek.GazelleScheduler1"
#define BUS_PATH "/com/piano_tek/GazelleScheduler1"

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static unsigned count_rows(sd_bus_message *reply) {
        unsigned n = 0;
        if (sd_bus_message_enter_container(reply, 'a', "a{sv}") < 0)
                return 0;
        while (sd_bus_message_skip(reply, "a{sv}") > 0)
                n++;
        return n;
}

int main(int argc, char **argv) {
        unsigned long calls = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
        uint32_t limit = argc > 2 ? (uint32_t) strtoul(argv[2], NULL, 10) : 20;
        sd_bus *bus = NULL;
        int r;

        if (calls == 0) {
                fprintf(stderr, "usage: getlogs-load [CALLS [LIMIT]]\n");
                return 2;
        }
        uint64_t *lat = calloc(calls, sizeof *lat);
        if (!lat)
                return 1;
        r = sd_bus_open_user(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the user bus: %s\n", strerror(-r));
                return 1;
        }

        unsigned first_rows = 0, last_rows = 0;
        uint64_t t0 = now_ns();
        for (unsigned long i = 0; i < calls; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                uint64_t a = now_ns();
                r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, BUS_NAME, "GetLogs", &error, &reply, "u", limit);
                lat[i] = now_ns() - a;
                if (r < 0) {
                        fprintf(stderr, "GetLogs call %lu failed: %s\n", i + 1, error.message ? error.message : strerror(-r));
                        sd_bus_error_free(&error);
                        return 1;
                }
                /* Counting walks the whole reply, as a real client would: only at both ends. */
                if (i == 0)
                        first_rows = count_rows(reply);
                else if (i == calls - 1)
                        last_rows = count_rows(reply);
                sd_bus_message_unref(reply);
        }
        double secs = (double) (now_ns() - t0) / 1e9;
        if (calls == 1)
                last_rows = first_rows;

        qsort(lat, calls, sizeof *lat, cmp_u64);
        printf("calls=%lu limit=%u rows=%u/%u p50_us=%.1f p99_us=%.1f max_us=%.1f calls_per_s=%.0f\n", calls,
               (unsigned) limit, first_rows, last_rows, lat[calls / 2] / 1e3, lat[calls * 99 / 100] / 1e3,
               lat[calls - 1] / 1e3, calls / secs);
        free(lat);
        sd_bus_flush_close_unref(bus);
        return first_rows == last_rows ? 0 : 1;
}
