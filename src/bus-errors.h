/* SPDX-License-Identifier: MIT */
/* bus-errors.h — the named D-Bus errors of com.piano_tek.GazelleScheduler1, in one table. */
#pragma once

#include <systemd/sd-bus.h>

#define BUS_NAME "com.piano_tek.GazelleScheduler1"
#define BUS_PATH "/com/piano_tek/GazelleScheduler1"
#define BUS_INTERFACE "com.piano_tek.GazelleScheduler1"

#define BUS_ERROR_UNKNOWN_TASK "com.piano_tek.GazelleScheduler1.Error.UnknownTask"
#define BUS_ERROR_ALREADY_RUNNING "com.piano_tek.GazelleScheduler1.Error.AlreadyRunning"
#define BUS_ERROR_STORE_UNAVAILABLE "com.piano_tek.GazelleScheduler1.Error.StoreUnavailable"
#define BUS_ERROR_SYSTEMD_UNAVAILABLE "com.piano_tek.GazelleScheduler1.Error.SystemdUnavailable"
#define BUS_ERROR_NOT_SUBSCRIBED "com.piano_tek.GazelleScheduler1.Error.NotSubscribed"
#define BUS_ERROR_INVALID_CONFIGURATION "com.piano_tek.GazelleScheduler1.Error.InvalidConfiguration"

/* An error text is at most this long: cut on a character boundary. */
#define BUS_ERROR_TEXT_MAX 1024

/* sd_bus_error_setf() whose text is safe to send: secrets masked (the journal sink's registry,
 * redact.h), valid UTF-8 (sd-bus refuses to send anything else, and the caller would wait for
 * its timeout), bounded. Returns what sd_bus_error_set() returns. */
int bus_error_setf(sd_bus_error *error, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for an asynchronous reply to call. */
int bus_reply_errorf(sd_bus_message *call, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* errno equivalents, so that clients using sd_bus_error_get_errno() get something sensible. */
extern const sd_bus_error_map gazelle_bus_errors[];
