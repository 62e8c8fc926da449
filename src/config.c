/* SPDX-License-Identifier: MIT */
/* config.c — environment settings, credential-or-environment secrets, state directory
 * resolution and validation. Every setting is one row of settings_table[] (name, kind, range,
 * default); config_load() walks it once, so a bad value fails at start with one line naming
 * the variable, what is wrong and what is accepted. check-config prints the same table. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "http.h"
#include "util.h"
#include "utf8.h"

#define SECRET_MAX 65536


static int invalid(Config *c, const char *fmt, ...) _printf_(2, 3);
static int invalid(Config *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A PostgreSQL host on this machine: a unix socket directory, localhost, 127.0.0.0/8 or ::1. */
static bool db_host_local(const char *h) {
        return isempty(h) || h[0] == '/' || h[0] == '@' || streq(h, "localhost") || streq(h, "::1") ||
               strncmp(h, "127.", 4) == 0;
}

/* 1 when the connection string reaches a server off this machine without requiring TLS (libpq's
 * default sslmode, prefer, silently falls back to plaintext), the first such host in host; 0
 * when every host is local or sslmode is require, verify-ca or verify-full; -EINVAL unparsable
 * (libpq reports that at connection). Names are not resolved: only loopback literals and
 * localhost count as local. */
static int db_url_plaintext_remote(const char *v, char *host, size_t n) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(v, &err);
        if (!opts) {
                PQfreemem(err);
                return -EINVAL;
        }
        const char *hosts = NULL, *addrs = NULL, *mode = NULL;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (streq(o->keyword, "host"))
                        hosts = o->val;
                else if (streq(o->keyword, "hostaddr"))
                        addrs = o->val;
                else if (streq(o->keyword, "sslmode"))
                        mode = o->val;
        }
        if (isempty(mode))
                mode = getenv("PGSSLMODE");
        if (isempty(hosts) && isempty(addrs))
                hosts = getenv("PGHOST");
        bool tls = mode && (streq(mode, "require") || streq(mode, "verify-ca") || streq(mode, "verify-full"));
        int r = 0;
        /* hostaddr, when given, is where libpq connects; host then only names the server. */
        const char *list = !isempty(addrs) ? addrs : hosts;
        for (const char *p = strempty(list); !tls && r == 0;) {
                size_t len = strcspn(p, ",");
                char one[128];
                snprintf(one, sizeof one, "%.*s", (int) (len < sizeof one ? len : sizeof one - 1), p);
                if (!db_host_local(one)) {
                        snprintf(host, n, "%s", one);
                        r = 1;
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        PQconninfoFree(opts);
        return r;
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

/* The file named by $GAZELLE_CONFIG must exist; the default place may be empty (defaults). */
static int load_settings(Config *c) {
        _cleanup_free_ char *path = settings_default_path(c->bus == BUS_SYSTEM);
        if (path && isempty(getenv("GAZELLE_CONFIG")) && access(path, F_OK) < 0 && errno == ENOENT)
                path = mfree(path);
        int r = settings_load(&c->settings, path, c->error, sizeof c->error);
        return r < 0 ? -EINVAL : 0;
}

typedef enum SettingKind {
        KIND_UNSIGNED, /* a whole number, min…max */
        KIND_TIMESPAN, /* "4h", "90min", "3600s", "2d": min…max microseconds */
        KIND_PATH,     /* an absolute path */
        KIND_URL,      /* https://…, or http:// to loopback (the tests' fakes) */
        KIND_SMTP_URL, /* smtp://HOST[:PORT] or smtps://HOST[:PORT]; may carry a password */
        KIND_DB_URL,   /* postgresql://… or key=value pairs; carries a password */
        KIND_GROUP,    /* a group name */
        KIND_CHOICE,   /* one word of choices */
        KIND_TEXT,     /* printable ASCII without spaces, at most max bytes */
        KIND_SECRET,   /* a secret read by its user: only its presence and readability here */
} SettingKind;

#define FIELD(f) offsetof(Config, f)
#define NO_FIELD SIZE_MAX

typedef struct SettingDef {
        const char *name;
        SettingKind kind;
        uint64_t min, max;      /* KIND_UNSIGNED, KIND_TIMESPAN (µs), KIND_TEXT (max bytes) */
        const char *def;        /* the default, parsed like a value; NULL: unset */
        size_t offset;          /* the Config field, NO_FIELD: validated here, read by its user */
        const char *credential; /* systemd credential read before the environment (secrets) */
        const char *choices;    /* KIND_CHOICE: "a|b" */
        bool mask;              /* a secret: masked in every text that leaves any process (redact.c) */
} SettingDef;

#define H (3600 * USEC_PER_SEC)

/* The one table of environment settings. Defaults here are the product's defaults (README). */
static const SettingDef settings_table[] = {
        { "GAZELLE_BUS", KIND_CHOICE, .offset = NO_FIELD, .choices = "user|system" },
        { "GAZELLE_CONFIG", KIND_PATH, .offset = NO_FIELD },
        /* Before DATABASE_URL, whose check reads it. */
        { "GAZELLE_DB_ALLOW_PLAINTEXT", KIND_CHOICE, .offset = NO_FIELD, .choices = "0|1" },
        { "DATABASE_URL", KIND_DB_URL, .offset = FIELD(database_url), .credential = "database-url", .mask = true },
        { "GAZELLE_LEASE_SECONDS", KIND_UNSIGNED, .min = 3, .max = 3600, .def = "60", .offset = FIELD(lease_seconds) },
        { "BACKUP_DIR", KIND_PATH, .offset = FIELD(backup_dir) },
        { "BACKUP_KEEP", KIND_UNSIGNED, .min = 1, .max = 1000, .def = "10", .offset = FIELD(backup_keep) },
        { "BACKUP_SQLITE_PATH", KIND_PATH, .offset = FIELD(backup_sqlite_path) },
        /* The build's group (meson option admin_group) is also the system bus policy's. */
        { "GAZELLE_ADMIN_GROUP", KIND_GROUP, .def = GAZELLE_ADMIN_GROUP, .offset = FIELD(admin_group) },
        { "GAZELLE_IDLE_EXIT_SEC", KIND_UNSIGNED, .min = 0, .max = 86400, .def = "30", .offset = FIELD(idle_exit_sec) },
        { "GAZELLE_API_URL", KIND_URL, .def = "https://gazelleapp.io/graphql/private/", .offset = FIELD(gazelle_api_url) },
        { "GAZELLE_TOKEN_URL", KIND_URL, .def = "https://gazelleapp.io/developer/oauth/token",
          .offset = FIELD(gazelle_token_url) },
        { "GAZELLE_AUTHORIZE_URL", KIND_URL, .def = "https://gazelleapp.io/developer/oauth/authorize",
          .offset = FIELD(gazelle_authorize_url) },
        { "GAZELLE_REDIRECT_URI", KIND_TEXT, .min = 0, .max = 512, .def = "urn:ietf:wg:oauth:2.0:oob", .offset = FIELD(gazelle_redirect_uri) },
        { "GAZELLE_MAX_CONCURRENCY", KIND_UNSIGNED, .min = 1, .max = 16, .def = "2", .offset = FIELD(gazelle_max_concurrency) },
        { "GAZELLE_HTTP_MAX_ATTEMPTS", KIND_UNSIGNED, .min = 1, .max = 20, .def = "6", .offset = FIELD(http_max_attempts) },
        { "GAZELLE_HTTP_TIMEOUT_SEC", KIND_UNSIGNED, .min = 1, .max = 3600, .def = "120", .offset = FIELD(http_timeout_sec) },
        { "GAZELLE_HTTP_CONNECT_TIMEOUT_SEC", KIND_UNSIGNED, .min = 1, .max = 300, .def = "10", .offset = FIELD(http_connect_timeout_sec) },
        { "GAZELLE_HTTP_BUDGET_SEC", KIND_UNSIGNED, .min = 1, .max = 86400, .def = "300", .offset = FIELD(http_budget_sec) },
        { "GAZELLE_HTTP_BACKOFF_MS", KIND_UNSIGNED, .min = 1, .max = 600000, .def = "500", .offset = FIELD(http_backoff_ms) },
        { "GAZELLE_HTTP_LOW_SPEED_SEC", KIND_UNSIGNED, .min = 1, .max = 3600, .def = "30", .offset = FIELD(http_low_speed_sec) },
        { "GAZELLE_SYNC_DELETE_MAX_PERCENT", KIND_UNSIGNED, .min = 0, .max = 100, .def = "10", .offset = FIELD(sync_delete_max_percent) },
        { "GAZELLE_API_KEY", KIND_SECRET, .offset = NO_FIELD, .credential = "gazelle-api-key", .mask = true },
        { "GAZELLE_CLIENT_ID", KIND_SECRET, .offset = NO_FIELD, .credential = "gazelle-client-id" },
        { "GAZELLE_CLIENT_SECRET", KIND_SECRET, .offset = NO_FIELD, .credential = "gazelle-client-secret",
          .mask = true },
        { "ALERTS_MAX_LATENESS", KIND_TIMESPAN, .min = USEC_PER_SEC, .max = 7 * 24 * H, .def = "4h", .offset = FIELD(alerts_max_lateness) },
        { "SMTP_URL", KIND_SMTP_URL, .offset = FIELD(smtp_url), .mask = true },
        { "SMTP_USERNAME", KIND_SECRET, .offset = NO_FIELD, .credential = "smtp-username" },
        { "SMTP_PASSWORD", KIND_SECRET, .offset = NO_FIELD, .credential = "smtp-password", .mask = true },
        { "SENDGRID_API_URL", KIND_URL, .def = "https://api.sendgrid.com", .offset = FIELD(sendgrid_api_url) },
        { "SENDGRID_API_KEY", KIND_SECRET, .offset = NO_FIELD, .credential = "sendgrid-api-key", .mask = true },
        { "GOOGLE_APPLICATION_CREDENTIALS", KIND_PATH, .offset = FIELD(google_application_credentials),
          .credential = "google-service-account.json" },
        { "GOOGLE_TOKEN_URL", KIND_URL, .def = "https://oauth2.googleapis.com/token", .offset = FIELD(google_token_url) },
        { "SHEETS_API_URL", KIND_URL, .def = "https://sheets.googleapis.com", .offset = FIELD(sheets_api_url) },
        { "REPORT_SPREADSHEET_ID", KIND_TEXT, .min = 1, .max = 128, .offset = FIELD(report_spreadsheet_id) },
};

/* Every row marked mask, whichever module reads it, is registered with the redaction step of
 * every process, so that a text reaching another process (a stored message, a journal line in a
 * failure email) is safe there too. A connection string or URL registers its password part.
 * Done before any row is checked: a bad value's error line is masked too. */
static void register_secrets(Config *c) {
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const SettingDef *d = &settings_table[i];
                _cleanup_free_ char *v = NULL;
                if (!d->mask || config_read_secret(d->credential, d->name, &v) < 0 || !v)
                        continue; /* unreadable: load_table() says so */
                if (d->kind == KIND_DB_URL || d->kind == KIND_SMTP_URL)
                        secrets_add_url(c->secrets, v);
                else
                        secrets_add(c->secrets, v);
                explicit_bzero(v, strlen(v));
        }
}

/* A value as it may appear in the one error line: at most 40 bytes, cut on a character
 * boundary, control characters as '?'. Never used for secrets. */
static const char *echo_value(const char *v, char buf[static 48]) {
        size_t n = strlen(v), i;
        bool cut = n > 40;
        if (cut) {
                n = 40;
                while (n > 0 && ((unsigned char) v[n] & 0xC0) == 0x80)
                        n--;
        }
        for (i = 0; i < n; i++)
                buf[i] = (unsigned char) v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
        strcpy(buf + i, cut ? "…" : "");
        return buf;
}

/* "7d", "4h", "90min", "1s": the largest unit that divides it. */
static const char *format_span(usec_t u, char buf[static 32]) {
        static const struct {
                usec_t mult;
                const char *suffix;
        } units[] = { { 24 * H, "d" }, { H, "h" }, { 60 * USEC_PER_SEC, "min" }, { USEC_PER_SEC, "s" } };
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (u % units[i].mult == 0) {
                        snprintf(buf, 32, "%llu%s", (unsigned long long) (u / units[i].mult), units[i].suffix);
                        return buf;
                }
        snprintf(buf, 32, "%lluus", (unsigned long long) u);
        return buf;
}

static int parse_whole(const char *v, uint64_t *ret) {
        if (v[0] < '0' || v[0] > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end)
                return errno == ERANGE ? -ERANGE : -EINVAL;
        *ret = n;
        return 0;
}

/* The scheme of a URL, for an error line that must not echo the rest (a password). */
static const char *url_scheme(const char *v, char buf[static 17]) {
        size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
        if (n == 0 || n > 16 || v[n] != ':')
                return NULL;
        memcpy(buf, v, n);
        buf[n] = 0;
        return buf;
}

static int check_value(Config *c, const SettingDef *d, const char *v) {
        char e[48], a[32], b[32];
        void *field = d->offset == NO_FIELD ? NULL : (char *) c + d->offset;
        uint64_t n = 0;

        switch (d->kind) {
        case KIND_UNSIGNED: {
                int r = parse_whole(v, &n);
                if (r == -EINVAL)
                        return invalid(c, "%s=%s: not a whole number (expected %llu to %llu)", d->name, echo_value(v, e),
                                       (unsigned long long) d->min, (unsigned long long) d->max);
                if (r < 0 || n < d->min || n > d->max)
                        return invalid(c, "%s=%s: out of range (expected %llu to %llu)", d->name, echo_value(v, e),
                                       (unsigned long long) d->min, (unsigned long long) d->max);
                if (field)
                        *(unsigned *) field = (unsigned) n;
                return 0;
        }
        case KIND_TIMESPAN: {
                usec_t u;
                int r = parse_timespan(v, &u);
                if (r == -EINVAL)
                        return invalid(c, "%s=%s: not a duration (expected %s to %s, e.g. 4h, 90min, 3600s)", d->name,
                                       echo_value(v, e), format_span(d->min, a), format_span(d->max, b));
                if (r < 0 || u < d->min || u > d->max)
                        return invalid(c, "%s=%s: out of range (expected %s to %s)", d->name, echo_value(v, e),
                                       format_span(d->min, a), format_span(d->max, b));
                if (field)
                        *(usec_t *) field = u;
                return 0;
        }
        case KIND_PATH:
                if (v[0] != '/' || strlen(v) >= PATH_MAX)
                        return invalid(c, "%s=%s: not an absolute path (expected /…)", d->name, echo_value(v, e));
                break;
        case KIND_URL:
                if (http_url_allowed(v) < 0)
                        return invalid(c, "%s=%s: URL refused (expected https://…, or http:// to 127.0.0.1, ::1 or "
                                       "localhost)", d->name, echo_value(v, e));
                break;
        case KIND_SMTP_URL: {
                bool tls;
                char scheme[17];
                /* Never echo it: the URL may carry a password. */
                if (!url_scheme(v, scheme))
                        return invalid(c, "%s: not a URL (expected smtp://HOST[:PORT] or smtps://HOST[:PORT])", d->name);
                if (!streq(scheme, "smtp") && !streq(scheme, "smtps"))
                        return invalid(c, "%s: scheme %s:// refused (expected smtp://HOST[:PORT] or smtps://HOST[:PORT])",
                                       d->name, scheme);
                if (smtp_url_check(v, &tls) < 0)
                        return invalid(c, "%s: not a valid %s:// URL (expected %s://HOST[:PORT])", d->name, scheme, scheme);
                break;
        }
        case KIND_DB_URL: {
                /* Never echo it: a connection string carries the password. */
                if (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0 && !strchr(v, '='))
                        return invalid(c, "%s: not a PostgreSQL connection string (expected postgresql://… or "
                                       "key=value pairs)", d->name);
                char host[128];
                int r = db_url_plaintext_remote(v, host, sizeof host);
                if (r > 0 && !streq_ptr(getenv("GAZELLE_DB_ALLOW_PLAINTEXT"), "1"))
                        return invalid(c, "%s: the server %s is not on this machine and TLS is not required: add "
                                       "sslmode=verify-full and sslrootcert=/path/to/ca.crt (or at least "
                                       "sslmode=require) to the connection string, or set GAZELLE_DB_ALLOW_PLAINTEXT=1",
                                       d->name, host);
                break;
        }
        case KIND_GROUP:
                if (strlen(v) > 64 || strpbrk(v, " :/\n\t"))
                        return invalid(c, "%s=%s: not a valid group name (expected at most 64 characters, no space, "
                                       "':' or '/')", d->name, echo_value(v, e));
                break;
        case KIND_CHOICE: {
                size_t len = strlen(v);
                for (const char *p = d->choices; *p;) {
                        size_t w = strcspn(p, "|");
                        if (w == len && strncmp(p, v, w) == 0)
                                return 0;
                        p += w + (p[w] == '|');
                }
                return invalid(c, "%s=%s: expected one of %s", d->name, echo_value(v, e), d->choices);
        }
        case KIND_TEXT:
                if (strlen(v) > d->max)
                        return invalid(c, "%s=%s: too long (expected at most %llu characters)", d->name, echo_value(v, e),
                                       (unsigned long long) d->max);
                for (const char *p = v; *p; p++)
                        if ((unsigned char) *p <= ' ' || *p == 0x7f)
                                return invalid(c, "%s=%s: spaces or control characters (expected one word)", d->name,
                                               echo_value(v, e));
                break;
        case KIND_SECRET:
                return 0;
        }
        if (field)
                *(char **) field = xstrdup(v);
        return 0;
}

/* The value of a row: its credential when set, else the environment; NULL when unset. A
 * credential that exists but cannot be read fails here, not later in a task. */
static int setting_value(Config *c, const SettingDef *d, char **ret) {
        *ret = NULL;
        if (d->kind == KIND_SECRET || d->kind == KIND_DB_URL) {
                int r = config_read_secret(d->credential, d->name, ret);
                if (r < 0)
                        return invalid(c, "credential %s: cannot be read (%s): check LoadCredential= and the file's "
                                       "permissions", d->credential, strerror(-r));
                return 0;
        }
        const char *v = getenv(d->name);
        if (!isempty(v))
                *ret = xstrdup(v);
        return 0;
}

static int load_table(Config *c) {
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const SettingDef *d = &settings_table[i];
                _cleanup_free_ char *v = NULL;
                int r = setting_value(c, d, &v);
                if (r < 0)
                        return r;
                if (v)
                        r = check_value(c, d, v);
                else if (d->def)
                        r = check_value(c, d, d->def);
                if (d->kind == KIND_SECRET || d->kind == KIND_DB_URL)
                        if (v)
                                explicit_bzero(v, strlen(v));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The mail settings that only make sense together, refused at start rather than when the first
 * email is sent (mailer_new() keeps the same rules for its own callers). */
static int check_mail_settings(Config *c) {
        const Settings *s = &c->settings;
        _cleanup_free_ char *key = NULL;
        (void) config_read_secret("sendgrid-api-key", "SENDGRID_API_KEY", &key); /* unreadable: refused above */
        bool has_key = !isempty(key);
        if (key)
                explicit_bzero(key, strlen(key));

        if (s->transport == MAIL_TRANSPORT_SENDGRID && !has_key)
                return invalid(c, "mail.transport=sendgrid: SENDGRID_API_KEY (credential sendgrid-api-key) is not set");
        if (s->transport == MAIL_TRANSPORT_SMTP && !c->smtp_url)
                return invalid(c, "mail.transport=smtp: SMTP_URL is not set (expected smtps://HOST[:PORT] or "
                               "smtp://HOST[:PORT])");
        MailTransport t = s->transport != MAIL_TRANSPORT_AUTO ? s->transport
                          : has_key                          ? MAIL_TRANSPORT_SENDGRID
                          : c->smtp_url                      ? MAIL_TRANSPORT_SMTP
                                                             : MAIL_TRANSPORT_OUTBOX;
        if (t != MAIL_TRANSPORT_OUTBOX && !s->sender_email)
                return invalid(c, "mail.sender_email: required to send through %s (%s is set): add it to %s",
                               t == MAIL_TRANSPORT_SENDGRID ? "SendGrid" : "SMTP",
                               t == MAIL_TRANSPORT_SENDGRID ? "SENDGRID_API_KEY" : "SMTP_URL",
                               s->path ?: "the JSON configuration");
        return 0;
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

        r = load_table(c);
        if (r < 0)
                return r;
        /* On the system bus the installed policy decides who reaches the daemon at all: a group
         * that differs from the one it was generated with would split the two checks. */
        if (bus == BUS_SYSTEM && !streq(c->admin_group, GAZELLE_ADMIN_GROUP))
                return invalid(c, "GAZELLE_ADMIN_GROUP=%s: the system bus policy of this build grants group %s (meson "
                               "option admin_group); the two must agree: unset it, or rebuild with -Dadmin_group=%s",
                               c->admin_group, GAZELLE_ADMIN_GROUP, c->admin_group);
        if (!c->backup_dir)
                c->backup_dir = xasprintf("%s/backups", c->state_dir);

        r = load_settings(c);
        if (r < 0)
                return r;
        r = check_mail_settings(c);
        if (r < 0)
                return r;
        if (c->report_spreadsheet_id) {
                free(c->settings.spreadsheet_id);
                c->settings.spreadsheet_id = xstrdup(c->report_spreadsheet_id);
        }
        return 0;
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
        free(c->gazelle_api_url);
        free(c->gazelle_token_url);
        free(c->gazelle_authorize_url);
        free(c->gazelle_redirect_uri);
        if (c->smtp_url) {
                explicit_bzero(c->smtp_url, strlen(c->smtp_url));
                free(c->smtp_url);
        }
        free(c->sendgrid_api_url);
        free(c->google_application_credentials);
        free(c->google_token_url);
        free(c->sheets_api_url);
        free(c->report_spreadsheet_id);
        settings_clear(&c->settings);
        log_forget_secrets(c->secrets);
        secrets_free(c->secrets);
        *c = (Config) {};
}

/* ---- check-config: what is in effect ---- */

/* A connection string with its password masked, whichever form it has (URL or key=value). */
static char *mask_conninfo(const char *v) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(v, &err);
        if (!opts) {
                PQfreemem(err);
                return xstrdup("(set, unparsable: not shown)");
        }
        char *s = NULL;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val || !*o->val)
                        continue;
                bool secret = streq(o->keyword, "password") || streq(o->keyword, "sslpassword");
                s = strextendf(s, "%s%s=%s", s ? " " : "", o->keyword, secret ? REDACT_MASK : o->val);
        }
        PQconninfoFree(opts);
        return s ?: xstrdup("(empty)");
}

/* A URL with the password of its user info masked. */
static char *mask_url(const char *v) {
        CURLU *u = curl_url();
        char *pw = NULL, *out = NULL;
        if (u && curl_url_set(u, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
                if (curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK)
                        curl_url_set(u, CURLUPART_PASSWORD, REDACT_MASK, 0);
                curl_url_set(u, CURLUPART_QUERY, NULL, 0); /* may hold a key */
                curl_url_get(u, CURLUPART_URL, &out, 0);
        }
        char *s = xstrdup(out ?: "(set, unparsable: not shown)");
        curl_free(out);
        if (pw)
                explicit_bzero(pw, strlen(pw));
        curl_free(pw);
        curl_url_cleanup(u);
        return s;
}

/* Where a row's value came from: "credential NAME", "environment", "default" or "unset". */
static const char *setting_source(const SettingDef *d, bool *ret_set) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        *ret_set = true;
        if (dir && d->credential) {
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, d->credential);
                struct stat st;
                if (stat(path, &st) == 0 && st.st_size > 0)
                        return "credential";
        }
        if (!isempty(getenv(d->name)))
                return "environment";
        *ret_set = d->def != NULL;
        return d->def ? "default" : "unset";
}

void config_print(const Config *c, FILE *f) {
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const SettingDef *d = &settings_table[i];
                const void *field = d->offset == NO_FIELD ? NULL : (const char *) c + d->offset;
                bool set;
                const char *source = setting_source(d, &set);
                _cleanup_free_ char *shown = NULL;
                char span[32];

                if (!set && d->kind == KIND_PATH && field && *(char *const *) field) {
                        shown = xstrdup(*(char *const *) field); /* computed from the state directory */
                        source = "default";
                } else if (!set)
                        shown = xstrdup("-");
                else if (d->kind == KIND_SECRET)
                        shown = xstrdup("(set, secret)");
                else if (d->kind == KIND_DB_URL)
                        shown = mask_conninfo(c->database_url);
                else if (d->kind == KIND_SMTP_URL)
                        shown = mask_url(c->smtp_url);
                else if (d->kind == KIND_UNSIGNED && field)
                        shown = xasprintf("%u", *(const unsigned *) field);
                else if (d->kind == KIND_TIMESPAN && field)
                        shown = xstrdup(format_span(*(const usec_t *) field, span));
                else if (field)
                        shown = xstrdup(strempty(*(char *const *) field));
                else
                        shown = xstrdup(getenv(d->name) ? getenv(d->name) : strempty(d->def));
                if (streq(source, "credential"))
                        fprintf(f, "  %-33s %s  (credential %s)\n", d->name, shown, d->credential);
                else
                        fprintf(f, "  %-33s %s  (%s)\n", d->name, shown, source);
        }
}
