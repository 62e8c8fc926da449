/* SPDX-License-Identifier: MIT */
/* util.h — scope-based cleanup, ownership transfer and the few helpers every module shares.
 * Deliberately tiny: this is not a utility library. */
#pragma once

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership over: returns the pointer and leaves NULL behind so the cleanup does nothing. */
#define TAKE_PTR(p)                           \
        ({                                    \
                __typeof__(p) _ptr_ = (p);    \
                (p) = NULL;                   \
                _ptr_;                        \
        })
#define TAKE_FD(fd)                  \
        ({                           \
                int _fd_ = (fd);     \
                (fd) = -1;           \
                _fd_;                \
        })

/* Declares a cleanup function fooptr(Type **p) that calls func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void cJSON_Deletep(cJSON **j) {
        cJSON_Delete(*j);
}

/* A secret (token, key, password) is erased before its memory is given back. NULL is fine. */
void secret_erase(char *s);
void secret_free(char *s);
static inline void secret_freep(char **s) {
        secret_free(*s);
}
#define _cleanup_secret_ _cleanup_(secret_freep)

/* A cancellation flag set by a signal handler (NULL: never cancelled). */
static inline bool is_cancelled(const volatile sig_atomic_t *flag) {
        return flag && *flag;
}

/* "localhost", 127.x.y.z or ::1 (bracketed or not): the only hosts plain http:// or smtp://
 * may reach (the tests' fakes). */
bool host_is_loopback(const char *host);

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}
static inline const char *strempty(const char *s) {
        return s ? s : "";
}

/* Allocation failure is not a condition we can report usefully from deep inside a task:
 * abort loudly, like systemd's "Out of memory." paths do at the top. */
void *xmalloc(size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);
/* Appends formatted text to a heap string (NULL = empty) and returns it, reallocated. */
char *strextendf(char *s, const char *fmt, ...) _printf_(2, 3);

/* A growing, always NUL-terminated byte buffer for composed bodies (MIME, JSON, SQL). */
typedef struct Buf {
        char *data;
        size_t len, cap;
} Buf;
void buf_add(Buf *b, const char *s, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);

/* errno-preserving mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Whether path, or the closest of its ancestors that exists, is on a read-only mount: what a
 * unit's ProtectSystem=strict makes of every path outside its ReadWritePaths= (a write there
 * fails with EROFS, or with ENOENT when SQLite cannot create its journal). */
bool path_on_read_only_mount(const char *path);
/* The one French sentence that says so and what to do: "<path> est en lecture seule dans le bac
 * à sable de l'unité … ajoutez ReadWritePaths=<dir> avec « systemctl edit <unit> »". Owned. */
char *read_only_sandbox_hint(const char *path, const char *unit);
/* 0 when the directory dir may hold files another user must not swap: owned by the effective
 * user or root, not writable by group or others (sshd's rule for key files). A missing dir is
 * fine (it is created 0700). -EPERM with error set to one French line naming setting, the owner
 * or mode and the fix. */
int private_dir_check(const char *setting, const char *dir, char *error, size_t error_size);
/* The same rule for a file (a backup about to be restored). A missing file is left to the caller. */
int private_file_check(const char *path, char *error, size_t error_size);
/* The directory part of path ("." when none); owned. */
char *dirname_of(const char *path);
/* fsync a directory so a rename in it is durable; 0 or -errno. */
int fsync_directory(const char *dir);
/* Read a whole (small, bounded) file; -EFBIG when larger than max. */
int read_file_bounded(const char *path, size_t max, char **ret);
/* The host name, bounded; never fails (falls back to "localhost"). */
const char *host_name(char *buf); /* buf: 256 bytes */
/* The user name of uid from the user database, or "uid N" when it has none; newly allocated. */
char *user_name_of(uid_t uid);
