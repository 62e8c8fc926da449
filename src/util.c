/* SPDX-License-Identifier: MIT */
/* util.c — the shared helpers declared in util.h: allocation that aborts, mkdir -p,
 * directory fsync, bounded file reads. */
#include "util.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

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

bool path_on_read_only_mount(const char *path) {
        _cleanup_free_ char *p = xstrdup(path);
        for (;;) {
                struct statvfs sv;
                if (statvfs(p, &sv) == 0)
                        return sv.f_flag & ST_RDONLY;
                char *slash = strrchr(p, '/');
                if (!slash || errno != ENOENT)
                        return false;
                if (slash == p) {
                        p[1] = 0;
                        if (statvfs(p, &sv) == 0)
                                return sv.f_flag & ST_RDONLY;
                        return false;
                }
                *slash = 0;
        }
}

char *read_only_sandbox_hint(const char *path, const char *unit) {
        return xasprintf("%s est en lecture seule dans le bac à sable de l'unité (ProtectSystem=strict) : "
                         "ajoutez « ReadWritePaths=%s » dans [Service] avec « systemctl edit %s », puis relancez",
                         path, path, unit);
}

int private_dir_check(const char *setting, const char *dir, char *error, size_t error_size) {
        struct stat st;
        if (stat(dir, &st) < 0)
                return 0; /* created 0700 by its user; other errors are reported where it is used */
        if (!S_ISDIR(st.st_mode)) {
                snprintf(error, error_size, "%s=%s n'est pas un répertoire", setting, dir);
                return -ENOTDIR;
        }
        if (st.st_uid != geteuid() && st.st_uid != 0) {
                _cleanup_free_ char *owner = user_name_of(st.st_uid), *me = user_name_of(geteuid());
                snprintf(error, error_size, "%s=%s appartient à %s, pas à %s : un autre compte pourrait y remplacer une "
                         "sauvegarde avant une restauration. Refusé : « chown %s %s », ou un autre répertoire",
                         setting, dir, owner ?: "un autre utilisateur", me ?: "ce compte", me ?: "UTILISATEUR", dir);
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                snprintf(error, error_size, "%s=%s est modifiable par %s (mode %04o) : un autre compte pourrait y "
                         "remplacer une sauvegarde avant une restauration. Refusé : « chmod go-w %s »", setting, dir,
                         st.st_mode & S_IWOTH ? "tous les utilisateurs" : "son groupe", (unsigned) (st.st_mode & 07777), dir);
                return -EPERM;
        }
        return 0;
}

int private_file_check(const char *path, char *error, size_t error_size) {
        struct stat st;
        if (stat(path, &st) < 0)
                return 0;
        if (st.st_uid != geteuid() && st.st_uid != 0) {
                _cleanup_free_ char *owner = user_name_of(st.st_uid);
                snprintf(error, error_size, "%s appartient à %s, un autre compte : il a pu être remplacé. Vérifiez-le, "
                         "puis « chown » au compte du service", path, owner ?: "un autre utilisateur");
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                snprintf(error, error_size, "%s est modifiable par d'autres comptes (mode %04o) : il a pu être remplacé. "
                         "Vérifiez-le, puis « chmod go-w %s »", path, (unsigned) (st.st_mode & 07777), path);
                return -EPERM;
        }
        return 0;
}

char *dirname_of(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return xstrdup(".");
        if (slash == path)
                return xstrdup("/");
        return xasprintf("%.*s", (int) (slash - path), path);
}
