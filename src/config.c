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

#include "journal.h"
#include "util.h"

#define SECRET_MAX 65536

#define GAZELLE_DEFAULT_API_URL "https://gazelleapp.io/graphql/private/"
#define GAZELLE_DEFAULT_TOKEN_URL "https://gazelleapp.io/developer/oauth/token"
#define GAZELLE_DEFAULT_AUTHORIZE_URL "https://gazelleapp.io/developer/oauth/authorize"
#define GAZELLE_DEFAULT_REDIRECT_URI "urn:ietf:wg:oauth:2.0:oob"

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

/* $name as a whole number in [min, max], def when unset or empty; -EINVAL when malformed. */
static int env_unsigned_value(const char *name, unsigned min, unsigned max, unsigned def, unsigned *ret) {
        const char *v = getenv(name);
        if (isempty(v)) {
                *ret = def;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || end == v || n < min || n > max || v[0] == '-')
                return -EINVAL;
        *ret = (unsigned) n;
        return 0;
}

static int parse_unsigned(Config *c, const char *name, unsigned min, unsigned max, unsigned def, unsigned *ret) {
        if (env_unsigned_value(name, min, max, def, ret) < 0)
                return invalid(c, "%s=%.40s: expected a whole number from %u to %u", name, getenv(name), min, max);
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

/* Every setting that holds a secret, whichever module reads it: all are masked in every process,
 * so that a text reaching another process (a stored message, a journal line in a failure email)
 * is safe there too. url: a connection string or URL whose password part is the secret. */
static const struct {
        const char *credential, *env;
        bool url;
} secret_settings[] = {
        { "database-url", "DATABASE_URL", true },
        { "gazelle-api-key", "GAZELLE_API_KEY", false },
        { "gazelle-client-secret", "GAZELLE_CLIENT_SECRET", false },
        { "sendgrid-api-key", "SENDGRID_API_KEY", false },
        { "smtp-password", "SMTP_PASSWORD", false },
        { NULL, "SMTP_URL", true },
};

static void register_secrets(Config *c) {
        for (size_t i = 0; i < ELEMENTSOF(secret_settings); i++) {
                _cleanup_free_ char *v = NULL;
                if (config_read_secret(secret_settings[i].credential, secret_settings[i].env, &v) < 0 || !v)
                        continue; /* unreadable: the module that needs it says so */
                if (secret_settings[i].url)
                        secrets_add_url(c->secrets, v);
                else
                        secrets_add(c->secrets, v);
                explicit_bzero(v, strlen(v));
        }
}

int config_load(Config *c, BusScope bus) {
        int r;

        *c = (Config) { .bus = bus, .secrets = secrets_new() };
        register_secrets(c);
        log_set_secrets(c->secrets);

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
        log_forget_secrets(c->secrets);
        secrets_free(c->secrets);
        *c = (Config) {};
}

/* ---- Gazelle's environment settings ---- */

static int env_unsigned(const char *name, unsigned def, unsigned min, unsigned max, unsigned *ret, char *error,
                        size_t error_size) {
        if (env_unsigned_value(name, min, max, def, ret) < 0) {
                snprintf(error, error_size, "%s=%.32s : attendu un entier de %u à %u", name, getenv(name), min, max);
                return -EINVAL;
        }
        return 0;
}

static int http_policy_from_env(HttpPolicy *p, char *error, size_t error_size) {
        unsigned attempts, timeout, budget, backoff, low_speed, connect;
        int r;

        http_policy_default(p);
        if ((r = env_unsigned("GAZELLE_HTTP_MAX_ATTEMPTS", p->max_attempts, 1, 20, &attempts, error, error_size)) < 0 ||
            (r = env_unsigned("GAZELLE_HTTP_TIMEOUT_SEC", (unsigned) (p->attempt_timeout_usec / USEC_PER_SEC), 1, 3600,
                              &timeout, error, error_size)) < 0 ||
            (r = env_unsigned("GAZELLE_HTTP_CONNECT_TIMEOUT_SEC", (unsigned) (p->connect_timeout_usec / USEC_PER_SEC), 1,
                              300, &connect, error, error_size)) < 0 ||
            (r = env_unsigned("GAZELLE_HTTP_BUDGET_SEC", (unsigned) (p->budget_usec / USEC_PER_SEC), 1, 86400, &budget,
                              error, error_size)) < 0 ||
            (r = env_unsigned("GAZELLE_HTTP_BACKOFF_MS", (unsigned) (p->backoff_base_usec / USEC_PER_MSEC), 1, 600000,
                              &backoff, error, error_size)) < 0 ||
            (r = env_unsigned("GAZELLE_HTTP_LOW_SPEED_SEC", p->low_speed_time_sec, 1, 3600, &low_speed, error,
                              error_size)) < 0)
                return r;
        p->max_attempts = attempts;
        p->attempt_timeout_usec = timeout * USEC_PER_SEC;
        p->connect_timeout_usec = connect * USEC_PER_SEC;
        p->budget_usec = budget * USEC_PER_SEC;
        p->backoff_base_usec = backoff * USEC_PER_MSEC;
        p->low_speed_time_sec = low_speed;
        return 0;
}

static int url_setting(const char *env, const char *def, char **ret, char *error, size_t error_size) {
        const char *v = getenv(env);
        if (isempty(v))
                v = def;
        if (http_url_allowed(v) < 0) {
                snprintf(error, error_size, "%s=%.200s : URL refusée (https://, ou http:// vers 127.0.0.1/localhost "
                          "seulement)", env, v);
                return -EINVAL;
        }
        *ret = xstrdup(v);
        return 0;
}

static char *string_setting(const char *env, const char *def) {
        const char *v = getenv(env);
        return xstrdup(isempty(v) ? def : v);
}

int gazelle_settings_load(GazelleSettings *s, char *error, size_t error_size) {
        int r;
        assert(s && error);
        *s = (GazelleSettings) {};
        if ((r = env_unsigned("GAZELLE_MAX_CONCURRENCY", 2, 1, 16, &s->max_concurrency, error, error_size)) < 0 ||
            (r = http_policy_from_env(&s->http, error, error_size)) < 0 ||
            (r = url_setting("GAZELLE_API_URL", GAZELLE_DEFAULT_API_URL, &s->api_url, error, error_size)) < 0 ||
            (r = url_setting("GAZELLE_TOKEN_URL", GAZELLE_DEFAULT_TOKEN_URL, &s->token_url, error, error_size)) < 0) {
                gazelle_settings_clear(s);
                return r;
        }
        s->authorize_url = string_setting("GAZELLE_AUTHORIZE_URL", GAZELLE_DEFAULT_AUTHORIZE_URL);
        s->redirect_uri = string_setting("GAZELLE_REDIRECT_URI", GAZELLE_DEFAULT_REDIRECT_URI);
        return 0;
}

void gazelle_settings_clear(GazelleSettings *s) {
        free(s->api_url);
        free(s->token_url);
        free(s->authorize_url);
        free(s->redirect_uri);
        *s = (GazelleSettings) {};
}
