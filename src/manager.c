/* SPDX-License-Identifier: MIT */
/* manager.c — reads unit and timer properties from org.freedesktop.systemd1. */
#include "manager.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A start counts as timer-made when it began within this distance of the timer's trigger:
 * systemd enqueues the start job in the same event-loop iteration, so milliseconds apart. */
#define TIMER_START_TOLERANCE_USEC (3 * USEC_PER_SEC)

#define SD_DEST "org.freedesktop.systemd1"

int manager_bus_open(BusScope scope, sd_bus **ret) {
        assert(ret);
        return scope == BUS_SYSTEM ? sd_bus_open_system(ret) : sd_bus_open_user(ret);
}

static int unit_path(const char *unit, char **ret) {
        return sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, ret);
}

static int get_u64(sd_bus *bus, const char *unit, const char *iface, const char *prop, uint64_t *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        int r = unit_path(unit, &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_trivial(bus, SD_DEST, path, iface, prop, &error, 't', ret);
}

int manager_started_by_timer(sd_bus *bus, const char *unit, const char *timer, bool *ret) {
        assert(bus && unit && timer && ret);
        uint64_t started = 0, stopped = 0, triggered = 0;

        int r = get_u64(bus, unit, "org.freedesktop.systemd1.Unit", "InactiveExitTimestamp", &started);
        if (r < 0)
                return r;
        /* The end of the previous activation: a start that follows a run ended after the
         * trigger is another start (RunTask right after a timer run), however close in time. */
        r = get_u64(bus, unit, "org.freedesktop.systemd1.Unit", "InactiveEnterTimestamp", &stopped);
        if (r < 0)
                return r;
        r = get_u64(bus, timer, "org.freedesktop.systemd1.Timer", "LastTriggerUSec", &triggered);
        if (r < 0)
                return r;
        *ret = started > 0 && triggered > 0 && stopped <= triggered &&
               (started > triggered ? started - triggered : triggered - started) <= TIMER_START_TOLERANCE_USEC;
        return 0;
}

int manager_unit_active_state(sd_bus *bus, const char *unit, char **ret) {
        assert(bus && unit && ret);
        _cleanup_free_ char *path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        int r = unit_path(unit, &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit", "ActiveState",
                                          &error, ret);
}

bool manager_active_state_running(const char *state) {
        static const char *const running[] = { "activating", "active", "reloading", "deactivating" };
        for (size_t i = 0; state && i < ELEMENTSOF(running); i++)
                if (streq(state, running[i]))
                        return true;
        return false;
}

int manager_timer_next_elapse(sd_bus *bus, const char *timer, usec_t *ret) {
        assert(bus && timer && ret);
        uint64_t t = 0;
        int r = get_u64(bus, timer, "org.freedesktop.systemd1.Timer", "NextElapseUSecRealtime", &t);
        if (r < 0)
                return r;
        *ret = t == UINT64_MAX ? 0 : t;
        return 0;
}

/* A property of the Unit interface of a unit, as the reply to read it from. */
static int get_unit_property(sd_bus *bus, const char *unit, const char *prop, const char *type,
                             sd_bus_message **ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = unit_path(unit, &path);
        if (r < 0)
                return r;
        return sd_bus_get_property(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit", prop, &error, ret, type);
}

int manager_unit_invocation_id(sd_bus *bus, const char *unit, char ret[static 33]) {
        assert(bus && unit);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const void *p;
        size_t n;

        int r = get_unit_property(bus, unit, "InvocationID", "ay", &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(reply, 'y', &p, &n);
        if (r < 0)
                return r;
        if (n != 16)
                return -ENODATA;
        for (size_t i = 0; i < 16; i++)
                snprintf(ret + 2 * i, 3, "%02x", ((const uint8_t *) p)[i]);
        return 0;
}

int manager_unit_job(sd_bus *bus, const char *unit, uint32_t *ret) {
        assert(bus && unit && ret);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *job_path;
        uint32_t id;

        int r = get_unit_property(bus, unit, "Job", "(uo)", &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "(uo)", &id, &job_path);
        if (r < 0)
                return r;
        *ret = id; /* 0 and "/": no job */
        return 0;
}

int manager_job_id_from_path(const char *path, uint32_t *ret) {
        assert(ret);
        static const char prefix[] = "/org/freedesktop/systemd1/job/";
        if (!path || strncmp(path, prefix, sizeof prefix - 1) != 0)
                return -EINVAL;
        const char *digits = path + sizeof prefix - 1;
        char *end;
        errno = 0;
        unsigned long v = strtoul(digits, &end, 10);
        if (errno || end == digits || *end || v == 0 || v > UINT32_MAX || digits[0] == '0')
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}
