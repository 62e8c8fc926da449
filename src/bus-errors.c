/* SPDX-License-Identifier: MIT */
/* bus-errors.c — the error table registered with sd_bus_error_add_map(), and the one way
 * error texts are set (redacted, valid UTF-8, bounded). */
#include "bus-errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "journal.h"
#include "util.h"

static char *safe_text(const char *fmt, va_list ap) {
        char *raw = xvasprintf(fmt, ap);
        char *safe = log_redact(raw, BUS_ERROR_TEXT_MAX);
        secret_free(raw);
        return safe;
}

int bus_error_setf(sd_bus_error *error, const char *name, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *text = safe_text(fmt, ap);
        va_end(ap);
        return sd_bus_error_set(error, name, text);
}

int bus_reply_errorf(sd_bus_message *call, const char *name, const char *fmt, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *text = safe_text(fmt, ap);
        va_end(ap);
        (void) sd_bus_error_set(&e, name, text);
        return sd_bus_reply_method_error(call, &e);
}

const sd_bus_error_map gazelle_bus_errors[] = {
        SD_BUS_ERROR_MAP(BUS_ERROR_UNKNOWN_TASK, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_ALREADY_RUNNING, EBUSY),
        SD_BUS_ERROR_MAP(BUS_ERROR_STORE_UNAVAILABLE, EHOSTDOWN),
        SD_BUS_ERROR_MAP(BUS_ERROR_SYSTEMD_UNAVAILABLE, ECONNREFUSED),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_SUBSCRIBED, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_INVALID_CONFIGURATION, EINVAL),
        SD_BUS_ERROR_MAP_END,
};
