/* SPDX-License-Identifier: MIT */
/* util.c — the shared helpers declared in util.h: allocation that aborts, mkdir -p,
 * directory fsync, bounded file reads. */
#include "util.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

void *xmalloc(size_t n) {
        void *p = malloc(n ? n : 1);
        if (!p) {
                fputs("Out of memory.\n", stderr);
                abort();
        }
        return p;
}

char *xstrdup(const char *s) {
        char *p = strdup(s);
        if (!p) {
                fputs("Out of memory.\n", stderr);
                abort();
        }
        return p;
}

char *xvasprintf(const char *fmt, va_list ap) {
        char *p;
        if (vasprintf(&p, fmt, ap) < 0) {
                fputs("Out of memory.\n", stderr);
                abort();
        }
        return p;
}

char *xasprintf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *p = xvasprintf(fmt, ap);
        va_end(ap);
        return p;
}

char *strextendf(char *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *add = xvasprintf(fmt, ap);
        va_end(ap);
        char *out = xasprintf("%s%s", strempty(s), add);
        free(add);
        free(s);
        return out;
}

void buf_add(Buf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d) {
                        fputs("Out of memory.\n", stderr);
                        abort();
                }
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
}

void buf_puts(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = xvasprintf(fmt, ap);
        va_end(ap);
        buf_add(b, s, strlen(s));
        free(s);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = xstrdup(path);

        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int fsync_directory(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;

        _cleanup_free_ char *buf = xmalloc(max + 1);
        size_t n = fread(buf, 1, max + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > max)
                return -EFBIG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return (int) n;
}

const char *host_name(char *buf) {
        if (gethostname(buf, 255) < 0 || !*buf)
                strcpy(buf, "localhost");
        buf[255] = 0;
        return buf;
}

char *user_name_of(uid_t uid) {
        struct passwd pw, *pwp = NULL;
        char buf[4096];
        (void) getpwuid_r(uid, &pw, buf, sizeof buf, &pwp);
        return pwp ? xstrdup(pwp->pw_name) : xasprintf("uid %u", (unsigned) uid);
}

void secret_erase(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
}

void secret_free(char *s) {
        secret_erase(s);
        free(s);
}

bool host_is_loopback(const char *host) {
        return streq(host, "localhost") || strncmp(host, "127.", 4) == 0 || streq(host, "[::1]") ||
               streq(host, "::1");
}
