/* SPDX-License-Identifier: MIT */
/* task-lock.c — the task locks (<state_dir>/locks/<task>.lock, flock), task_busy(), and the
 * cross-host lease of each task (task_leases) with its keeper thread. */
#include "task-lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "journal.h"
#include "manager.h"
#include "store.h"
#include "util.h"

static char *lock_dir(const Config *c) {
        return xasprintf("%s/locks", c->state_dir);
}

static char *lock_path(const Config *c, const Task *t) {
        return xasprintf("%s/locks/%s.lock", c->state_dir, t->name);
}

/* task_lock_held() probes by taking the lock for an instant (the daemon's ListTasks, `status`): a
 * take that meets a probe must not conclude that a run holds the lock, or a timer's run would be
 * skipped. Only a lock still held after LOCK_PATIENCE_TRIES × LOCK_PATIENCE_NSEC is a run's. */
#define LOCK_PATIENCE_TRIES 250
#define LOCK_PATIENCE_NSEC (4 * 1000 * 1000)

static int flock_patiently(int fd) {
        for (int i = 0;; i++) {
                if (flock(fd, LOCK_EX | LOCK_NB) >= 0)
                        return 0;
                if (errno != EWOULDBLOCK)
                        return -errno;
                if (i >= LOCK_PATIENCE_TRIES)
                        return -EBUSY;
                (void) nanosleep(&(struct timespec) { .tv_nsec = LOCK_PATIENCE_NSEC }, NULL);
        }
}

/* Opens (creating) and locks one lock file in an existing lock directory. */
static int lock_one(const Config *c, const Task *t, int *ret_fd) {
        _cleanup_free_ char *path = lock_path(c, t);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        int r = flock_patiently(fd);
        if (r < 0)
                return r;
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

/* ---- The lease ---- */

static bool is_pg(Db *db) {
        return db_backend(db) == DB_POSTGRESQL;
}

/* SQLite's clock is ours: "now" and "now + seconds" as the fixed-width UTC text it compares. */
typedef struct LeaseClock {
        char now[ISO_UTC_MAX], until[ISO_UTC_MAX];
} LeaseClock;

static LeaseClock lease_clock(unsigned seconds) {
        LeaseClock k;
        usec_t now = now_realtime();
        format_iso_utc(now, k.now);
        format_iso_utc(now + (usec_t) seconds * USEC_PER_SEC, k.until);
        return k;
}

/* 1 with *ret filled (expired or not), 0 none. PostgreSQL: the row stays locked until the
 * transaction ends. */
static int lease_read(Db *db, const Task *t, bool for_update, TaskLeaseHolder *ret) {
        LeaseClock k = lease_clock(0);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = is_pg(db) ? db_query(db, for_update
                                     ? "SELECT host, run_id, expires_at <= now() FROM task_leases WHERE task_name = $1 FOR UPDATE"
                                     : "SELECT host, run_id, expires_at <= now() FROM task_leases WHERE task_name = $1",
                                     DB_PARAMS(DBV_TEXT_OR_NULL(t->name)), &c)
                          : db_query(db, "SELECT host, run_id, expires_at <= $2 FROM task_leases WHERE task_name = $1",
                                     DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(k.now)), &c);
        if (r < 0)
                return r;
        r = db_cursor_next(c);
        if (r <= 0)
                return r;
        *ret = (TaskLeaseHolder) { .expired = db_cursor_bool(c, 2) };
        snprintf(ret->host, sizeof ret->host, "%s", strempty(db_cursor_text(c, 0)));
        snprintf(ret->run_id, sizeof ret->run_id, "%s", strempty(db_cursor_text(c, 1)));
        return 1;
}

static int lease_insert(Db *db, const Task *t, const char *host, const char *run_id, unsigned seconds) {
        LeaseClock k = lease_clock(seconds);
        if (is_pg(db))
                return db_exec(db,
                               "INSERT INTO task_leases (task_name, host, run_id, acquired_at, expires_at) "
                               "VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4)) "
                               "ON CONFLICT (task_name) DO NOTHING",
                               DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(host), DBV_TEXT_OR_NULL(run_id),
                                         DBV_I(seconds)));
        return db_exec(db,
                       "INSERT INTO task_leases (task_name, host, run_id, acquired_at, expires_at) "
                       "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_name) DO NOTHING",
                       DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(host), DBV_TEXT_OR_NULL(run_id),
                                 DBV_TEXT_OR_NULL(k.now), DBV_TEXT_OR_NULL(k.until)));
}

static int lease_take_over(Db *db, const Task *t, const char *host, const char *run_id, unsigned seconds,
                           const char *prev_run_id) {
        LeaseClock k = lease_clock(seconds);
        if (is_pg(db))
                return db_exec(db,
                               "UPDATE task_leases SET host = $2, run_id = $3, acquired_at = now(), "
                               "expires_at = now() + make_interval(secs => $4) WHERE task_name = $1 AND run_id = $5",
                               DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(host), DBV_TEXT_OR_NULL(run_id),
                                         DBV_I(seconds), DBV_TEXT_OR_NULL(prev_run_id)));
        return db_exec(db,
                       "UPDATE task_leases SET host = $2, run_id = $3, acquired_at = $4, expires_at = $5 "
                       "WHERE task_name = $1 AND run_id = $6",
                       DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(host), DBV_TEXT_OR_NULL(run_id),
                                 DBV_TEXT_OR_NULL(k.now), DBV_TEXT_OR_NULL(k.until), DBV_TEXT_OR_NULL(prev_run_id)));
}

static int lease_take_tx(Db *db, const Task *t, const char *host, const char *run_id, unsigned seconds,
                         TaskLeaseHolder *prev) {
        int r = lease_read(db, t, true, prev);
        if (r < 0)
                return r;
        if (r == 0) {
                r = lease_insert(db, t, host, run_id, seconds);
                if (r < 0)
                        return r;
                if (r > 0)
                        return 0;
                /* Another host inserted it between our read and our insert: it holds it. */
                r = lease_read(db, t, false, prev);
                return r < 0 ? r : -EBUSY;
        }
        if (streq(prev->run_id, run_id))
                return 0; /* already ours */
        if (!prev->expired && !streq(prev->host, host))
                return -EBUSY;
        r = lease_take_over(db, t, host, run_id, seconds, prev->run_id);
        if (r < 0)
                return r;
        if (r == 0) {
                r = lease_read(db, t, false, prev);
                return r < 0 ? r : -EBUSY;
        }
        /* The dead holder's run, if it was left `running`. */
        r = store_run_close_interrupted(db, prev->run_id, now_realtime());
        if (r < 0)
                return r;
        if (r == 0)
                prev->run_id[0] = 0;
        return 0;
}

int task_lease_take(Db *db, const Task *t, const char *host, const char *run_id, unsigned seconds,
                    TaskLeaseHolder *ret_prev) {
        assert(db && t && host && run_id && ret_prev);
        TaskLeaseHolder prev = {};
        int r = db_begin(db);
        if (r < 0)
                return r;
        r = lease_take_tx(db, t, host, run_id, seconds, &prev);
        if (r < 0 && r != -EBUSY) {
                (void) db_rollback(db);
                return r;
        }
        int k = db_commit(db);
        if (k < 0)
                return k;
        *ret_prev = prev;
        return r;
}

int task_lease_renew(Db *db, const Task *t, const char *run_id, unsigned seconds) {
        LeaseClock k = lease_clock(seconds);
        int r = is_pg(db)
                ? db_exec(db,
                          "UPDATE task_leases SET expires_at = now() + make_interval(secs => $3) "
                          "WHERE task_name = $1 AND run_id = $2",
                          DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(run_id), DBV_I(seconds)))
                : db_exec(db, "UPDATE task_leases SET expires_at = $3 WHERE task_name = $1 AND run_id = $2",
                          DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(run_id), DBV_TEXT_OR_NULL(k.until)));
        if (r < 0)
                return r;
        if (r == 0) {
                db_set_error(db, "the lease of %s is no longer held by run %s", t->name, run_id);
                return -ESTALE;
        }
        return 0;
}

int task_lease_release(Db *db, const Task *t, const char *run_id) {
        int r = db_exec(db, "DELETE FROM task_leases WHERE task_name = $1 AND run_id = $2",
                        DB_PARAMS(DBV_TEXT_OR_NULL(t->name), DBV_TEXT_OR_NULL(run_id)));
        return r < 0 ? r : 0;
}

int task_lease_get(Db *db, const Task *t, TaskLeaseHolder *ret) {
        TaskLeaseHolder h;
        int r = lease_read(db, t, false, &h);
        if (r <= 0)
                return r;
        if (h.expired)
                return 0;
        *ret = h;
        return 1;
}

struct TaskLeaseKeeper {
        const Config *config;
        const Task *task;
        char run_id[40];
        unsigned seconds;
        volatile sig_atomic_t *cancel;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop;
        atomic_bool lost;
};

static void *keeper_main(void *userdata) {
        TaskLeaseKeeper *k = userdata;
        _cleanup_(db_closep) Db *db = NULL;
        bool warned = false;

        pthread_mutex_lock(&k->lock);
        for (;;) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += k->seconds >= 3 ? k->seconds / 3 : 1;
                while (!k->stop && pthread_cond_timedwait(&k->wake, &k->lock, &until) != ETIMEDOUT)
                        ;
                if (k->stop)
                        break;
                pthread_mutex_unlock(&k->lock);

                int r = db ? 0 : store_open(k->config, &db);
                if (r >= 0)
                        r = task_lease_renew(db, k->task, k->run_id, k->seconds);
                if (r == -ESTALE) {
                        log_warning("The lease of %s was taken over by another host: stopping run %s",
                                    k->task->name, k->run_id);
                        atomic_store(&k->lost, true);
                        *k->cancel = SIGALRM;
                        pthread_mutex_lock(&k->lock);
                        break;
                }
                if (r < 0) {
                        if (!warned)
                                log_warning("Cannot renew the lease of %s (run %s), retrying: %s", k->task->name,
                                            k->run_id, db ? db_error(db) : strerror(-r));
                        warned = true;
                        db = db_close(db); /* a new connection next time */
                } else
                        warned = false;
                pthread_mutex_lock(&k->lock);
        }
        pthread_mutex_unlock(&k->lock);
        return NULL;
}

int task_lease_keeper_start(const Config *c, const Task *t, const char *run_id, unsigned seconds,
                            volatile sig_atomic_t *cancel, TaskLeaseKeeper **ret) {
        TaskLeaseKeeper *k = xmalloc(sizeof *k);
        *k = (TaskLeaseKeeper) { .config = c, .task = t, .seconds = seconds, .cancel = cancel,
                                 .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };
        snprintf(k->run_id, sizeof k->run_id, "%s", run_id);
        int r = pthread_create(&k->thread, NULL, keeper_main, k);
        if (r != 0) {
                free(k);
                return -r;
        }
        *ret = k;
        return 0;
}

bool task_lease_keeper_lost(const TaskLeaseKeeper *k) {
        return k && atomic_load(&((TaskLeaseKeeper *) k)->lost);
}

TaskLeaseKeeper *task_lease_keeper_stop(TaskLeaseKeeper *k) {
        if (!k)
                return NULL;
        pthread_mutex_lock(&k->lock);
        k->stop = true;
        pthread_cond_signal(&k->wake);
        pthread_mutex_unlock(&k->lock);
        pthread_join(k->thread, NULL);
        pthread_mutex_destroy(&k->lock);
        pthread_cond_destroy(&k->wake);
        free(k);
        return NULL;
}
