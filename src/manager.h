/* SPDX-License-Identifier: MIT */
/* manager.h — what we ask the service manager (systemd, over D-Bus): the bus for our scope,
 * whether a start came from the unit's timer, unit and timer state. Library layer: -errno, no
 * logging; the bus error's text is returned through *error when given. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "timeutil.h"

/* The bus of the scope: system bus for BUS_SYSTEM, the user's session bus for BUS_USER. */
int manager_bus_open(BusScope scope, sd_bus **ret);

/* True when the unit's current activation was started by its timer: the timer's
 * LastTriggerUSec (reliable, unlike the stale TRIGGER_* variables of systemd 252) matches the
 * moment the unit left the inactive state, and the unit's previous activation ended before
 * that trigger. */
int manager_started_by_timer(sd_bus *bus, const char *unit, const char *timer, bool *ret);

/* ActiveState of a unit ("active", "activating", "inactive", "failed", …); newly allocated. */
int manager_unit_active_state(sd_bus *bus, const char *unit, char **ret);
/* An ActiveState in which the unit's process may be running: activating, active, reloading,
 * deactivating. NULL (unknown) is not running. */
bool manager_active_state_running(const char *state);
/* NextElapseUSecRealtime of a timer; 0 when it has none (disabled, not loaded). */
int manager_timer_next_elapse(sd_bus *bus, const char *timer, usec_t *ret);
/* InvocationID of the unit's current activation, as 32 hex characters. */
int manager_unit_invocation_id(sd_bus *bus, const char *unit, char ret[static 33]);
/* The id of the unit's pending or running job (its Job property), 0 when it has none. A runner
 * reads its own start job this way: the id the daemon learnt from StartUnit's reply. */
int manager_unit_job(sd_bus *bus, const char *unit, uint32_t *ret);
/* The id in a job object path (/org/freedesktop/systemd1/job/N). */
int manager_job_id_from_path(const char *path, uint32_t *ret);
