/* SPDX-License-Identifier: MIT */
/* task-lock.h — who is running a task, on this host: the one owner of the task locks and of
 * the answer to "is this task busy?".
 *
 * A task's runner holds an exclusive flock(2) on <state_dir>/locks/<task>.lock for the whole
 * run. The kernel drops the lock however the process ends (exit, SIGKILL, crash), which is
 * exactly the liveness the run lifecycle needs: a `running` row of this host whose task lock is
 * free has no live runner. Nothing outside this module knows the path or the protocol.
 *
 * Library layer: -errno, no logging. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "tasks.h"

/* The runner's lock: takes it (creating the lock directory 0700 and the file 0600 when
 * missing) and hands the open descriptor over; the lock lasts until that descriptor is
 * closed. -EBUSY when another process holds it. */
int task_lock_take(const Config *c, const Task *t, int *ret_fd);

/* A probe for observers (the daemon, the reaper): true when a process holds the task's lock.
 * A lock file that does not exist is free. The probe takes and drops the lock when it is
 * free, so a runner starting at that very instant may be told the task is busy (it then says
 * so and exits): a refused start, never two runs. */
bool task_lock_held(const Config *c, const Task *t);

/* Every task's lock at once, for operations no task may run under (restore). On -EBUSY
 * *ret_busy names the task that holds its lock; on any failure nothing stays locked. */
typedef struct TaskLocks {
        int fd[_TASK_MAX];
} TaskLocks;
#define TASK_LOCKS_INIT { .fd = { [0 ... _TASK_MAX - 1] = -1 } }
int task_locks_take_all(const Config *c, TaskLocks *ret, const Task **ret_busy);
void task_locks_release(TaskLocks *l);

/* THE answer to "is this task running?" on this host: its unit is in a running ActiveState
 * (manager_active_state_running()) or a runner outside systemd (a terminal's `run`) holds its
 * lock. bus may be NULL (no service manager to ask): the lock alone answers. The daemon adds
 * its own not-yet-started RunTask jobs on top. */
bool task_busy(const Config *c, sd_bus *bus, const Task *t);
