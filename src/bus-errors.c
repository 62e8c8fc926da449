/* bus-errors.c — the error table registered with sd_bus_error_add_map(). */
#include "bus-errors.h"

#include <errno.h>

const sd_bus_error_map gazelle_bus_errors[] = {
        SD_BUS_ERROR_MAP(BUS_ERROR_UNKNOWN_TASK, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_ALREADY_RUNNING, EBUSY),
        SD_BUS_ERROR_MAP(BUS_ERROR_STORE_UNAVAILABLE, EHOSTDOWN),
        SD_BUS_ERROR_MAP(BUS_ERROR_SYSTEMD_UNAVAILABLE, ECONNREFUSED),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_SUBSCRIBED, ENOENT),
        SD_BUS_ERROR_MAP_END,
};
