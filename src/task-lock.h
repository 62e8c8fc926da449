/* SPDX-License-Identifier: MIT */
/* task-lock.h — who is running a task, on this host: the one owner of the task locks and of
 * the answer to "is this task busy?".
 *
 * A task's runner holds an exclusive flock(2) on <state_dir>/locks/<task>.lock for the whole
 * run. The kernel drops the lock however the process ends (exit, SIGKILL, crash), which is
 * exactly the liveness the run lifecycle needs: a `running` row of this host whose task lock is
 * free has no live runner. Nothing outside this module knows the path or the protocol.
 *
 * Library layer: -errno, no logging (the lease keeper excepted: it warns once when it loses the
 * lease or cannot renew it). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "db.h"
#include "tasks.h"

/* The runner's lock: takes it (creating the lock directory 0700 and the file 0600 when
 * missing) and hands the open descriptor over; the lock lasts until that descriptor is
 * closed. -EBUSY when another process still holds it after ~1 s (a probe of task_lock_held()
 * holds it for an instant and is waited out). */
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

/* ---- The lease: the same exclusion across hosts that share one PostgreSQL store. ----
 *
 * A flock only sees this host. Every run therefore also holds its task's row in task_leases
 * (holder host + run id, expiry), taken, renewed and released in short transactions — no
 * session state, so it works through a transaction pooler (PgBouncer, Supavisor). The expiry
 * is on the server's clock (PostgreSQL; SQLite, one host, uses ours). A holder that dies stops
 * renewing: once its lease expires another host may take it over, closing the dead run. A lease
 * of this very host is taken over at once: the caller holds the host's task lock, so the run
 * that left it is dead. */

#define TASK_LEASE_HOST_MAX 256

typedef struct TaskLeaseHolder {
        char host[TASK_LEASE_HOST_MAX];
        char run_id[40];
        bool expired;
} TaskLeaseHolder;


/* Takes t's lease for (host, run_id), the caller holding this host's task lock. 0: taken, and
 * when it was a dead holder's lease, *ret_prev names that holder (its run, if still `running`,
 * is closed interrupted in the same transaction; ret_prev->run_id is "" otherwise). -EBUSY:
 * a live holder on another host, named in *ret_prev. Other -errno: the store failed. */
int task_lease_take(Db *db, const Task *t, const char *host, const char *run_id, unsigned seconds,
                    TaskLeaseHolder *ret_prev);
/* 0 renewed, -ESTALE when the lease is no longer ours (taken over after expiry). */
int task_lease_renew(Db *db, const Task *t, const char *run_id, unsigned seconds);
int task_lease_release(Db *db, const Task *t, const char *run_id);
/* 1 when a live (unexpired) lease exists, its holder in *ret; 0 none. */
int task_lease_get(Db *db, const Task *t, TaskLeaseHolder *ret);

/* The run's lease keeper: a thread with its own store connection that renews the lease every
 * third of its life. When the lease turns out lost it sets *cancel (so the run stops at its next
 * step, its transfers aborted) and task_lease_keeper_lost() says so. A renewal the store refuses
 * (connection lost) is retried with a new connection at the next tick. */
typedef struct TaskLeaseKeeper TaskLeaseKeeper;
int task_lease_keeper_start(const Config *c, const Task *t, const char *run_id, unsigned seconds,
                            volatile sig_atomic_t *cancel, TaskLeaseKeeper **ret);
bool task_lease_keeper_lost(const TaskLeaseKeeper *k);
TaskLeaseKeeper *task_lease_keeper_stop(TaskLeaseKeeper *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(TaskLeaseKeeper *, task_lease_keeper_stop);
