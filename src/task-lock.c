/* SPDX-License-Identifier: MIT */
/* task-lock.c — the task locks (<state_dir>/locks/<task>.lock, flock) and task_busy(). */
#include "task-lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "manager.h"
#include "util.h"

static char *lock_dir(const Config *c) {
        return xasprintf("%s/locks", c->state_dir);
}

static char *lock_path(const Config *c, const Task *t) {
        return xasprintf("%s/locks/%s.lock", c->state_dir, t->name);
}

/* Opens (creating) and locks one lock file in an existing lock directory. */
static int lock_one(const Config *c, const Task *t, int *ret_fd) {
        _cleanup_free_ char *path = lock_path(c, t);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int task_lock_take(const Config *c, const Task *t, int *ret_fd) {
        assert(c && t && ret_fd);
        _cleanup_free_ char *dir = lock_dir(c);
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        return lock_one(c, t, ret_fd);
}

bool task_lock_held(const Config *c, const Task *t) {
        assert(c && t);
        _cleanup_free_ char *path = lock_path(c, t);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;
}

void task_locks_release(TaskLocks *l) {
        for (int i = 0; i < _TASK_MAX; i++)
                if (l->fd[i] >= 0)
                        l->fd[i] = (close(l->fd[i]), -1);
}

int task_locks_take_all(const Config *c, TaskLocks *ret, const Task **ret_busy) {
        assert(c && ret && ret_busy);
        _cleanup_(task_locks_release) TaskLocks locks = TASK_LOCKS_INIT;
        _cleanup_free_ char *dir = lock_dir(c);
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        for (int i = 0; i < _TASK_MAX; i++) {
                const Task *t = task_get((TaskId) i);
                r = lock_one(c, t, &locks.fd[i]);
                if (r == -EBUSY)
                        *ret_busy = t;
                if (r < 0)
                        return r;
        }
        *ret = locks;
        locks = (TaskLocks) TASK_LOCKS_INIT;
        return 0;
}

bool task_busy(const Config *c, sd_bus *bus, const Task *t) {
        assert(c && t);
        _cleanup_free_ char *state = NULL;
        if (bus && manager_unit_active_state(bus, t->unit, &state) >= 0 && manager_active_state_running(state))
                return true;
        return task_lock_held(c, t);
}
