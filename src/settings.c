/* SPDX-License-Identifier: MIT */
/* settings.c — the JSON configuration file: parsing with cJSON, validation with one error line
 * naming the key, the built-in defaults, and the lookups tasks need (technicians by id or
 * alias, display names, institution membership with accent-insensitive name patterns). */
#include "settings.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <strings.h>

#include "utf8.h"
#include "util.h"

/* A settings file is a few kilobytes; anything near this is a mistake, not configuration. */
#define SETTINGS_FILE_MAX (1024 * 1024)
#define SETTINGS_STRING_MAX 1024
#define SETTINGS_LIST_MAX 1000


static const char *const default_keywords[] = {
        /* cover removed */
        "housse enlevée", "housse retirée", "housse enlevee", "sans housse", "pas de housse",
        /* humidity system unplugged or off */
        "débranché", "debranche", "dampp-chaser éteint", "système éteint", "humidificateur éteint",
        "système d'humidité", "pas branché",
        /* empty reservoir */
        "réservoir vide", "réservoir à sec", "remplir le réservoir", "manque d'eau",
        /* window open */
        "fenêtre ouverte", "fenêtres ouvertes",
        /* too cold, too dry, too humid */
        "trop froid", "trop sec", "trop sèche", "très sec", "trop humide", "humidité élevée",
        "humidité basse",
};

typedef struct DefaultInstitution {
        const char *title;
        const char *client_id;
        const char *pattern;
} DefaultInstitution;

static const DefaultInstitution default_institutions[] = {
        { "UQAM", "cli_sos6RK8t4htOApiM", "UQAM" },
        { "Vincent d'Indy", "cli_9UMLkteep8EsISbG", "Vincent d'Indy" },
        { "Place des Arts", "cli_HbEwl9rN11pSuDEU", "Place des Arts" },
};

static int fail(char *error, size_t size, const char *fmt, ...) _printf_(3, 4);
static int fail(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static void strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

static char **strv_new(size_t n) {
        char **l = xmalloc((n + 1) * sizeof(char *));
        memset(l, 0, (n + 1) * sizeof(char *));
        return l;
}

static void institution_clear(Institution *i) {
        free(i->title);
        strv_free(i->client_ids);
        strv_free(i->name_patterns);
        *i = (Institution) {};
}

static void technician_clear(Technician *t) {
        free(t->id);
        free(t->full_name);
        free(t->display_name);
        free(t->email);
        strv_free(t->aliases);
        *t = (Technician) {};
}

void settings_clear(Settings *s) {
        free(s->path);
        for (size_t i = 0; i < s->n_technicians; i++)
                technician_clear(&s->technicians[i]);
        free(s->technicians);
        free(s->fallback_email);
        free(s->admin_email);
        for (size_t i = 0; i < s->n_institutions; i++)
                institution_clear(&s->institutions[i]);
        free(s->institutions);
        institution_clear(&s->excluded);
        strv_free(s->maintenance_keywords);
        free(s->spreadsheet_id);
        free(s->sender_email);
        free(s->sender_name);
        free(s->outbox_dir);
        *s = (Settings) {};
}

/* Validation helpers: each names the key path in its one error line. */

static bool plausible_email(const char *s) {
        const char *at = strchr(s, '@');
        size_t n = strlen(s);
        if (n < 3 || n > 254 || !at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.'))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || strchr("<>()[],;:\\\"", *p))
                        return false;
        return at[1] != '.' && s[n - 1] != '.';
}

static int get_string(const cJSON *obj, const char *key, const char *path, bool required, bool email,
                      char **ret, char *error, size_t size) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!v || cJSON_IsNull(v)) {
                if (required)
                        return fail(error, size, "%s.%s: required string is missing", path, key);
                return 0;
        }
        if (!cJSON_IsString(v) || !v->valuestring)
                return fail(error, size, "%s.%s: expected a string", path, key);
        if (strlen(v->valuestring) > SETTINGS_STRING_MAX)
                return fail(error, size, "%s.%s: longer than %d bytes", path, key, SETTINGS_STRING_MAX);
        if (required && isempty(v->valuestring))
                return fail(error, size, "%s.%s: must not be empty", path, key);
        if (email && !isempty(v->valuestring) && !plausible_email(v->valuestring))
                return fail(error, size, "%s.%s: \"%.80s\" is not an email address", path, key, v->valuestring);
        free(*ret);
        *ret = isempty(v->valuestring) ? NULL : xstrdup(v->valuestring);
        return 0;
}

static int get_string_list(const cJSON *obj, const char *key, const char *path, char ***ret, char *error,
                           size_t size) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsArray(v))
                return fail(error, size, "%s.%s: expected a list of strings", path, key);
        int n = cJSON_GetArraySize(v);
        if (n > SETTINGS_LIST_MAX)
                return fail(error, size, "%s.%s: more than %d entries", path, key, SETTINGS_LIST_MAX);
        char **l = strv_new(n);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
                if (!cJSON_IsString(e) || isempty(e->valuestring) || strlen(e->valuestring) > SETTINGS_STRING_MAX) {
                        strv_free(l);
                        return fail(error, size, "%s.%s[%d]: expected a non-empty string of at most %d bytes",
                                    path, key, i, SETTINGS_STRING_MAX);
                }
                l[i++] = xstrdup(e->valuestring);
        }
        strv_free(*ret);
        *ret = l;
        return 0;
}

static int check_object(const cJSON *v, const char *path, char *error, size_t size) {
        if (!cJSON_IsObject(v))
                return fail(error, size, "%s: expected an object", path);
        return 0;
}

/* Unknown keys are typos more often than not: refuse them instead of silently ignoring. */
static int check_keys(const cJSON *obj, const char *path, const char *const *allowed, char *error, size_t size) {
        const cJSON *e;
        cJSON_ArrayForEach(e, obj) {
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        if (streq(e->string, *a))
                                ok = true;
                if (!ok)
                        return fail(error, size, "%s.%.60s: unknown key", path, e->string);
        }
        return 0;
}

static int parse_technician(const cJSON *v, const char *path, Technician *t, char *error, size_t size) {
        static const char *const keys[] = { "id", "full_name", "display_name", "email", "aliases", NULL };
        int r;
        if ((r = check_object(v, path, error, size)) < 0 || (r = check_keys(v, path, keys, error, size)) < 0 ||
            (r = get_string(v, "id", path, true, false, &t->id, error, size)) < 0 ||
            (r = get_string(v, "full_name", path, false, false, &t->full_name, error, size)) < 0 ||
            (r = get_string(v, "display_name", path, true, false, &t->display_name, error, size)) < 0 ||
            (r = get_string(v, "email", path, false, true, &t->email, error, size)) < 0 ||
            (r = get_string_list(v, "aliases", path, &t->aliases, error, size)) < 0)
                return r;
        if (!t->aliases)
                t->aliases = strv_new(0);
        return 0;
}

static int parse_institution(const cJSON *v, const char *path, bool need_title, Institution *inst, char *error,
                             size_t size) {
        static const char *const keys[] = { "title", "client_ids", "name_patterns", NULL };
        int r;
        if ((r = check_object(v, path, error, size)) < 0 || (r = check_keys(v, path, keys, error, size)) < 0 ||
            (r = get_string(v, "title", path, need_title, false, &inst->title, error, size)) < 0 ||
            (r = get_string_list(v, "client_ids", path, &inst->client_ids, error, size)) < 0 ||
            (r = get_string_list(v, "name_patterns", path, &inst->name_patterns, error, size)) < 0)
                return r;
        if (!inst->client_ids)
                inst->client_ids = strv_new(0);
        if (!inst->name_patterns)
                inst->name_patterns = strv_new(0);
        if (need_title && !inst->client_ids[0] && !inst->name_patterns[0])
                return fail(error, size, "%s: needs client_ids or name_patterns", path);
        return 0;
}

static int parse_technicians(const cJSON *root, Settings *s, char *error, size_t size) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "technicians");
        if (!v)
                return 0;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SETTINGS_LIST_MAX)
                return fail(error, size, "technicians: expected a list of at most %d objects", SETTINGS_LIST_MAX);
        size_t n = cJSON_GetArraySize(v);
        s->technicians = xmalloc(n * sizeof(Technician) + 1);
        memset(s->technicians, 0, n * sizeof(Technician));
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
                char path[32];
                size_t i = s->n_technicians++;
                snprintf(path, sizeof path, "technicians[%zu]", i);
                int r = parse_technician(e, path, &s->technicians[i], error, size);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(s->technicians[j].id, s->technicians[i].id))
                                return fail(error, size, "%s.id: \"%.60s\" is listed twice", path,
                                            s->technicians[i].id);
        }
        return 0;
}

static int parse_institutions(const cJSON *root, Settings *s, char *error, size_t size) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "institutions");
        if (!v)
                return 0;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > 100)
                return fail(error, size, "institutions: expected a list of 1 to 100 objects");
        for (size_t i = 0; i < s->n_institutions; i++)
                institution_clear(&s->institutions[i]);
        free(s->institutions);
        size_t n = cJSON_GetArraySize(v);
        s->institutions = xmalloc(n * sizeof(Institution));
        memset(s->institutions, 0, n * sizeof(Institution));
        s->n_institutions = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
                char path[32];
                size_t i = s->n_institutions++;
                snprintf(path, sizeof path, "institutions[%zu]", i);
                int r = parse_institution(e, path, true, &s->institutions[i], error, size);
                if (r < 0)
                        return r;
                /* Sheets tab titles: at most 100 characters, no []*?/\: and unique. */
                if (strlen(s->institutions[i].title) > 100 || strpbrk(s->institutions[i].title, "[]*?/\\:"))
                        return fail(error, size, "%s.title: a tab title has at most 100 characters and none of []*?/\\:",
                                    path);
                for (size_t j = 0; j < i; j++)
                        if (strcasecmp(s->institutions[j].title, s->institutions[i].title) == 0)
                                return fail(error, size, "%s.title: \"%.60s\" is used twice", path,
                                            s->institutions[i].title);
                if (strcasecmp(s->institutions[i].title, "Alertes Maintenance") == 0)
                        return fail(error, size, "%s.title: \"Alertes Maintenance\" is the report's own tab", path);
        }
        return 0;
}

static int parse_alerts(const cJSON *root, Settings *s, char *error, size_t size) {
        static const char *const keys[] = { "excluded_institutions", "fallback_email", NULL };
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "alerts");
        int r;
        if (!v)
                return 0;
        if ((r = check_object(v, "alerts", error, size)) < 0 || (r = check_keys(v, "alerts", keys, error, size)) < 0 ||
            (r = get_string(v, "fallback_email", "alerts", false, true, &s->fallback_email, error, size)) < 0)
                return r;
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(v, "excluded_institutions");
        if (!ex)
                return 0;
        institution_clear(&s->excluded);
        return parse_institution(ex, "alerts.excluded_institutions", false, &s->excluded, error, size);
}

static int parse_transport(const char *name, MailTransport *ret) {
        static const char *const names[] = {
                [MAIL_TRANSPORT_AUTO] = "auto",
                [MAIL_TRANSPORT_SENDGRID] = "sendgrid",
                [MAIL_TRANSPORT_SMTP] = "smtp",
                [MAIL_TRANSPORT_OUTBOX] = "outbox",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(name, names[i])) {
                        *ret = (MailTransport) i;
                        return 0;
                }
        return -EINVAL;
}

static int parse_mail(const cJSON *root, Settings *s, char *error, size_t size) {
        static const char *const keys[] = { "sender_email", "sender_name", "transport", "outbox_dir", "admin_email",
                                            NULL };
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "mail");
        _cleanup_free_ char *transport = NULL;
        int r;
        if (!v)
                return 0;
        if ((r = check_object(v, "mail", error, size)) < 0 || (r = check_keys(v, "mail", keys, error, size)) < 0 ||
            (r = get_string(v, "sender_email", "mail", false, true, &s->sender_email, error, size)) < 0 ||
            (r = get_string(v, "sender_name", "mail", false, false, &s->sender_name, error, size)) < 0 ||
            (r = get_string(v, "admin_email", "mail", false, true, &s->admin_email, error, size)) < 0 ||
            (r = get_string(v, "outbox_dir", "mail", false, false, &s->outbox_dir, error, size)) < 0 ||
            (r = get_string(v, "transport", "mail", false, false, &transport, error, size)) < 0)
                return r;
        if (s->outbox_dir && s->outbox_dir[0] != '/')
                return fail(error, size, "mail.outbox_dir: \"%.80s\" must be an absolute path", s->outbox_dir);
        if (transport && parse_transport(transport, &s->transport) < 0)
                return fail(error, size, "mail.transport: \"%.40s\" is not one of auto, sendgrid, smtp, outbox",
                            transport);
        return 0;
}

static int parse_report(const cJSON *root, Settings *s, char *error, size_t size) {
        static const char *const keys[] = { "spreadsheet_id", "maintenance_keywords", NULL };
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "report");
        int r;
        if (!v)
                return 0;
        if ((r = check_object(v, "report", error, size)) < 0 ||
            (r = check_keys(v, "report", keys, error, size)) < 0 ||
            (r = get_string(v, "spreadsheet_id", "report", false, false, &s->spreadsheet_id, error, size)) < 0 ||
            (r = get_string_list(v, "maintenance_keywords", "report", &s->maintenance_keywords, error, size)) < 0)
                return r;
        if (s->spreadsheet_id && strspn(s->spreadsheet_id,
                                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
                                         strlen(s->spreadsheet_id))
                return fail(error, size, "report.spreadsheet_id: expected the id from the sheet's URL (letters, digits, - and _)");
        return 0;
}

static void settings_defaults(Settings *s) {
        s->n_institutions = ELEMENTSOF(default_institutions);
        s->institutions = xmalloc(sizeof(Institution) * s->n_institutions);
        for (size_t i = 0; i < s->n_institutions; i++) {
                Institution *inst = &s->institutions[i];
                inst->title = xstrdup(default_institutions[i].title);
                inst->client_ids = strv_new(1);
                inst->client_ids[0] = xstrdup(default_institutions[i].client_id);
                inst->name_patterns = strv_new(1);
                inst->name_patterns[0] = xstrdup(default_institutions[i].pattern);
        }
        s->excluded.client_ids = strv_new(0);
        s->excluded.name_patterns = strv_new(0);
        s->maintenance_keywords = strv_new(ELEMENTSOF(default_keywords));
        for (size_t i = 0; i < ELEMENTSOF(default_keywords); i++)
                s->maintenance_keywords[i] = xstrdup(default_keywords[i]);
        s->sender_name = xstrdup("Piano-Tek");
        s->transport = MAIL_TRANSPORT_AUTO;
}

char *settings_default_path(bool system) {
        const char *e = getenv("GAZELLE_CONFIG");
        if (!isempty(e))
                return xstrdup(e);
        if (system)
                return xstrdup(GAZELLE_SYSCONFDIR "/gazelle-scheduler/config.json");
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (!isempty(xdg))
                return xasprintf("%s/gazelle-scheduler/config.json", xdg);
        if (!isempty(home))
                return xasprintf("%s/.config/gazelle-scheduler/config.json", home);
        return NULL;
}

static int parse_root(const cJSON *root, Settings *s, char *error, size_t size) {
        static const char *const keys[] = { "technicians", "institutions", "alerts", "mail", "report", "$comment",
                                            NULL };
        int r;
        if ((r = check_object(root, "(top level)", error, size)) < 0 ||
            (r = check_keys(root, "(top level)", keys, error, size)) < 0 ||
            (r = parse_technicians(root, s, error, size)) < 0 || (r = parse_institutions(root, s, error, size)) < 0 ||
            (r = parse_alerts(root, s, error, size)) < 0 || (r = parse_mail(root, s, error, size)) < 0 ||
            (r = parse_report(root, s, error, size)) < 0)
                return r;
        return 0;
}

/* What cJSON lets through: a key given twice (the second silently wins, or the first, by
 * reader) and strings whose \u escapes decode to invalid UTF-8 (a lone surrogate). Both are
 * refused, naming where. */
static int check_tree(const cJSON *v, const char *path, char *error, size_t size) {
        if (cJSON_IsString(v) && v->valuestring && !utf8_is_valid(v->valuestring))
                return fail(error, size, "%s: invalid UTF-8 in the string (a lone \\uD800-\\uDFFF escape?)", path);
        if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
                return 0;
        size_t i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
                char sub[160];
                if (cJSON_IsObject(v)) {
                        if (!utf8_is_valid(e->string))
                                return fail(error, size, "%s: a key is invalid UTF-8 (a lone \\uD800-\\uDFFF escape?)",
                                            path);
                        for (const cJSON *p = v->child; p != e; p = p->next)
                                if (streq(p->string, e->string))
                                        return fail(error, size, "%s: duplicate key \"%.60s\" (keep one)", path, e->string);
                        if (streq(path, "(top level)"))
                                snprintf(sub, sizeof sub, "%.60s", e->string);
                        else
                                snprintf(sub, sizeof sub, "%.90s.%.60s", path, e->string);
                } else
                        snprintf(sub, sizeof sub, "%.140s[%zu]", path, i);
                utf8_cut(sub, sizeof sub - 1);
                int r = check_tree(e, sub, error, size);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int settings_parse_file(Settings *s, const char *path, char *error, size_t error_size) {
        _cleanup_free_ char *text = NULL;
        char inner[200] = "";

        int r = read_file_bounded(path, SETTINGS_FILE_MAX, &text);
        if (r < 0) {
                snprintf(error, error_size, "%s: cannot read the configuration: %s", path, strerror(-r));
                return r;
        }
        const char *bad = utf8_first_invalid(text);
        if (bad) {
                size_t line = 1;
                for (const char *c = text; c < bad; c++)
                        line += *c == '\n';
                snprintf(error, error_size, "%s: line %zu: invalid UTF-8 (save the file as UTF-8)", path, line);
                return -EINVAL;
        }
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_ParseWithLength(text, strlen(text));
        if (!root) {
                const char *at = cJSON_GetErrorPtr();
                size_t line = 1;
                for (const char *c = text; at && c < at && *c; c++)
                        line += *c == '\n';
                snprintf(error, error_size, "%s: line %zu: not valid JSON", path, line);
                return -EINVAL;
        }
        r = check_tree(root, "(top level)", inner, sizeof inner);
        if (r >= 0)
                r = parse_root(root, s, inner, sizeof inner);
        if (r < 0) {
                snprintf(error, error_size, "%s: %s", path, inner);
                return r;
        }
        s->path = xstrdup(path);
        return 0;
}

int settings_load(Settings *s, const char *path, char *error, size_t error_size) {
        *s = (Settings) {};
        settings_defaults(s);

        if (path) {
                int r = settings_parse_file(s, path, error, error_size);
                if (r < 0) {
                        settings_clear(s);
                        return r;
                }
        }
        return 0;
}

const Technician *settings_find_technician(const Settings *s, const char *id_or_alias) {
        if (isempty(id_or_alias))
                return NULL;
        for (size_t i = 0; i < s->n_technicians; i++)
                if (streq(s->technicians[i].id, id_or_alias))
                        return &s->technicians[i];
        for (size_t i = 0; i < s->n_technicians; i++)
                for (char **a = s->technicians[i].aliases; a && *a; a++)
                        if (strcasecmp(*a, id_or_alias) == 0)
                                return &s->technicians[i];
        return NULL;
}

const Technician *settings_find_technician_by_email(const Settings *s, const char *email) {
        if (isempty(email) || !strchr(email, '@'))
                return NULL;
        for (size_t i = 0; i < s->n_technicians; i++)
                if (s->technicians[i].email && strcasecmp(s->technicians[i].email, email) == 0)
                        return &s->technicians[i];
        return NULL;
}

const char *settings_display_name(const Settings *s, const char *user_id, const char *fallback) {
        const Technician *t = settings_find_technician(s, user_id);
        return t ? t->display_name : fallback;
}

/* Two-byte UTF-8 Latin-1 letters (U+00C0…U+00FF) to their ASCII base letter. */
static const char latin1_base[64] = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";

char *text_fold(const char *s) {
        size_t n = strlen(s);
        char *out = xmalloc(2 * n + 1), *o = out;
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                if (*p < 0x80) {
                        *o++ = (char) tolower(*p++);
                } else if (p[0] == 0xc3 && p[1] >= 0x80 && p[1] <= 0xbf) {
                        *o++ = (char) tolower((unsigned char) latin1_base[p[1] - 0x80]);
                        p += 2;
                } else if (p[0] == 0xc5 && (p[1] == 0x92 || p[1] == 0x93)) { /* Œ œ */
                        *o++ = 'o';
                        *o++ = 'e';
                        p += 2;
                } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x98 || p[2] == 0x99)) { /* ‘ ’ */
                        *o++ = '\'';
                        p += 3;
                } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x93 || p[2] == 0x94)) { /* – — */
                        *o++ = '-';
                        p += 3;
                } else {
                        /* Other multibyte characters are copied as they are: they match themselves. */
                        *o++ = (char) *p++;
                }
        }
        *o = 0;
        return out;
}

bool institution_matches(const Institution *inst, const char *client_id, const char *client_name) {
        if (!isempty(client_id))
                for (char **c = inst->client_ids; c && *c; c++)
                        if (streq(*c, client_id))
                                return true;
        if (isempty(client_name) || !inst->name_patterns || !inst->name_patterns[0])
                return false;
        _cleanup_free_ char *name = text_fold(client_name);
        for (char **pat = inst->name_patterns; *pat; pat++) {
                _cleanup_free_ char *f = text_fold(*pat);
                if (strstr(name, f))
                        return true;
        }
        return false;
}
