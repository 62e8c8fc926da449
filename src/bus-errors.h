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

/* errno equivalents, so that clients using sd_bus_error_get_errno() get something sensible. */
extern const sd_bus_error_map gazelle_bus_errors[];
