/* config.c — environment settings, credential-or-environment secrets, state directory
 * resolution and validation. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define SECRET_MAX 65536

static int invalid(Config *c, const char *fmt, ...) _printf_(2, 3);
static int invalid(Config *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

BusScope config_default_bus(void) {
        const char *e = getenv("GAZELLE_BUS");
        if (e && streq(e, "user"))
                return BUS_USER;
        if (e && streq(e, "system"))
                return BUS_SYSTEM;
        return geteuid() == 0 && access("/run/systemd/system", F_OK) == 0 ? BUS_SYSTEM : BUS_USER;
}

int config_read_secret(const char *credential, const char *env, char **ret) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        *ret = NULL;
        if (dir && credential) {
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, credential);
                char *s = NULL;
                int r = read_file_bounded(path, SECRET_MAX, &s);
                if (r >= 0) {
                        size_t n = strlen(s);
                        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
                                s[--n] = 0;
                        if (n > 0) {
                                *ret = s;
                                return 0;
                        }
                        /* An empty credential is the units' "not configured" default
                         * (SetCredential=): fall back to the environment. */
                        free(s);
                } else if (r != -ENOENT)
                        return r;
        }
        const char *v = env ? getenv(env) : NULL;
        if (!isempty(v))
                *ret = xstrdup(v);
        return 0;
}

static int parse_unsigned(Config *c, const char *name, unsigned min, unsigned max, unsigned def, unsigned *ret) {
        const char *v = getenv(name);
        if (isempty(v)) {
                *ret = def;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || n < min || n > max || v[0] == '-')
                return invalid(c, "%s=%.40s: expected a whole number from %u to %u", name, v, min, max);
        *ret = (unsigned) n;
        return 0;
}

static int resolve_state_dir(Config *c) {
        const char *v = getenv("STATE_DIRECTORY");
        if (!isempty(v)) {
                /* systemd may pass several ':'-separated directories; ours is the first. */
                c->state_dir = xasprintf("%.*s", (int) strcspn(v, ":"), v);
                return 0;
        }
        v = getenv("XDG_STATE_HOME");
        if (!isempty(v)) {
                if (v[0] != '/')
                        return invalid(c, "XDG_STATE_HOME=%.60s: must be an absolute path", v);
                c->state_dir = xasprintf("%s/gazelle-scheduler", v);
                return 0;
        }
        v = getenv("HOME");
        if (isempty(v) || v[0] != '/')
                return invalid(c, "HOME is not set: set STATE_DIRECTORY or XDG_STATE_HOME to choose where the "
                                  "store lives");
        c->state_dir = xasprintf("%s/.local/state/gazelle-scheduler", v);
        return 0;
}

static int absolute_path_setting(Config *c, const char *name, char **ret) {
        const char *v = getenv(name);
        if (isempty(v))
                return 0;
        if (v[0] != '/' || strlen(v) >= PATH_MAX)
                return invalid(c, "%s=%.60s: must be an absolute path", name, v);
        *ret = xstrdup(v);
        return 0;
}

/* The file named by $GAZELLE_CONFIG must exist; the default place may be empty (defaults). */
static int load_settings(Config *c) {
        _cleanup_free_ char *path = settings_default_path(c->bus == BUS_SYSTEM);
        if (path && isempty(getenv("GAZELLE_CONFIG")) && access(path, F_OK) < 0 && errno == ENOENT)
                path = mfree(path);
        int r = settings_load(&c->settings, path, c->error, sizeof c->error);
        return r < 0 ? -EINVAL : 0;
}

int config_load(Config *c, BusScope bus) {
        int r;

        *c = (Config) { .bus = bus };

        r = resolve_state_dir(c);
        if (r < 0)
                return r;
        c->sqlite_path = xasprintf("%s/gazelle-scheduler.sqlite", c->state_dir);

        r = config_read_secret("database-url", "DATABASE_URL", &c->database_url);
        if (r < 0)
                return invalid(c, "credential database-url: cannot be read (%s)", strerror(-r));
        if (c->database_url && strncmp(c->database_url, "postgres://", 11) != 0 &&
            strncmp(c->database_url, "postgresql://", 13) != 0 && !strchr(c->database_url, '='))
                /* Never echo it: a connection string carries the password. */
                return invalid(c, "DATABASE_URL: not a PostgreSQL connection string (expected postgresql://… "
                                  "or key=value pairs)");

        r = absolute_path_setting(c, "BACKUP_DIR", &c->backup_dir);
        if (r < 0)
                return r;
        if (!c->backup_dir)
                c->backup_dir = xasprintf("%s/backups", c->state_dir);
        r = absolute_path_setting(c, "BACKUP_SQLITE_PATH", &c->backup_sqlite_path);
        if (r < 0)
                return r;
        r = parse_unsigned(c, "BACKUP_KEEP", 1, 1000, 10, &c->backup_keep);
        if (r < 0)
                return r;
        r = parse_unsigned(c, "GAZELLE_IDLE_EXIT_SEC", 0, 86400, 30, &c->idle_exit_sec);
        if (r < 0)
                return r;

        const char *g = getenv("GAZELLE_ADMIN_GROUP");
        if (g && (strlen(g) == 0 || strlen(g) > 64 || strpbrk(g, " :/\n")))
                return invalid(c, "GAZELLE_ADMIN_GROUP=%.64s: not a valid group name", g);
        c->admin_group = xstrdup(g ? g : "gazelle-admin");

        return load_settings(c);
}

void config_clear(Config *c) {
        free(c->state_dir);
        free(c->sqlite_path);
        if (c->database_url) {
                explicit_bzero(c->database_url, strlen(c->database_url));
                free(c->database_url);
        }
        free(c->backup_dir);
        free(c->backup_sqlite_path);
        free(c->admin_group);
        settings_clear(&c->settings);
        *c = (Config) {};
}
