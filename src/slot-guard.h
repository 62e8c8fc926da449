/* SPDX-License-Identifier: MIT */
/* slot-guard.h — the once-per-slot rule of scheduled runs (a timer start whose America/Montreal
 * slot already succeeded does nothing): the slot of an instant, the per-host stamp of a slot
 * done, and `should-run`, the units' ExecCondition= guard. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "tasks.h"
#include "timeutil.h"

/* The slot an instant belongs to: [from, to) runs from the task's hh:mm on day to hh:mm the
 * next day, Montréal time. */
typedef struct Slot {
        LocalDate day;
        usec_t from, to;
} Slot;

Slot slot_of(const Task *task, usec_t t);

/* <state_dir>/slots/<task>.done holds the day of the last slot whose scheduled run succeeded
 * on this host. It needs no secret to read, unlike the store: systemd 252 gives ExecCondition=
 * no credentials. A cache of the store, written after the store; 0 or -errno. */
int slot_stamp_write(const char *state_dir, const Task *task, const Slot *slot);
/* 1 when the stamp names slot's day, 0 when it does not or is missing, -errno. */
int slot_stamp_matches(const char *state_dir, const Task *task, const Slot *slot);

/* `should-run TASK`: exit code 1 skips a timer start whose slot already succeeded, 0 runs.
 * config_result is config_load()'s: a partly loaded configuration still names the state
 * directory. When it cannot decide, it says why in the journal and lets the run start: the
 * runner re-checks the slot in the store and records `skipped`. */
int slot_guard_should_run(const Config *config, int config_result, const Task *task);
