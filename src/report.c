/* SPDX-License-Identifier: MIT */
/* report.c — Rapport Timeline. One query streams the institutions' services and measurements
 * newest first; rows are handled one Montréal day at a time (a day is a contiguous run of that
 * order), which is all that folding a measurement into the same day's service and dropping
 * duplicates need, so memory does not grow with the history. Each tab goes to a CSV file; the
 * day's files are made in a temporary directory and swapped in whole. Google Sheets receives
 * exactly the CSV files' cells (google.c). */
#include "report.h"

#include <ctype.h>
#include <inttypes.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "csv.h"
#include "google.h"
#include "labels.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

#define TYPE_SERVICE "SERVICE_ENTRY_MANUAL"
#define TYPE_MEASUREMENT "PIANO_MEASUREMENT"
#define PROGRESS_EVERY 5000

const char *const report_columns[REPORT_COLUMNS] = {
        "DateEvenement", "TypeEvenement", "Description", "NomClient", "Marque", "Modele",
        "NumeroSerie", "TypePiano", "Annee", "Local", "Technicien", "MesureHumidite",
};

/* The institution tabs' columns with the institution after the date and the keyword last. */
const char *const report_alert_columns[REPORT_ALERT_COLUMNS] = {
        "DateEvenement", "Institution", "TypeEvenement", "Description", "NomClient", "Marque", "Modele",
        "NumeroSerie", "TypePiano", "Annee", "Local", "Technicien", "MesureHumidite", "MotCle",
};

char *report_file_slug(const char *title) {
        _cleanup_free_ char *folded = text_fold(title);
        char *s = xmalloc(strlen(folded) + 1);
        size_t n = 0;
        for (const char *p = folded; *p; p++) {
                if (isalnum((unsigned char) *p))
                        s[n++] = (char) tolower((unsigned char) *p);
                else if (n > 0 && s[n - 1] != '-')
                        s[n++] = '-';
        }
        while (n > 0 && s[n - 1] == '-')
                n--;
        s[n] = 0;
        if (n == 0) {
                free(s);
                return xstrdup("onglet");
        }
        return s;
}

/* ---- Humidity and temperature ------------------------------------------------------------ */

typedef struct Reading {
        bool has_temp, has_humidity;
        double temp, humidity;
        bool temp_f, temp_c; /* explicit unit */
} Reading;

static bool starts_with_degree(const char *p, size_t *len) {
        /* ° (U+00B0) and º (U+00BA), both used for degrees. */
        if ((unsigned char) p[0] == 0xC2 && ((unsigned char) p[1] == 0xB0 || (unsigned char) p[1] == 0xBA)) {
                *len = 2;
                return true;
        }
        return false;
}

static const char *skip_spaces(const char *p) {
        while (*p == ' ' || *p == '\t' || ((unsigned char) p[0] == 0xC2 && (unsigned char) p[1] == 0xA0))
                p += *p == ' ' || *p == '\t' ? 1 : 2;
        return p;
}

static bool parse_decimal(const char *p, double *v, const char **end) {
        if (!isdigit((unsigned char) *p))
                return false;
        double x = 0;
        for (; isdigit((unsigned char) *p); p++)
                x = x * 10 + (*p - '0');
        if ((*p == '.' || *p == ',') && isdigit((unsigned char) p[1])) {
                double scale = 0.1;
                for (p++; isdigit((unsigned char) *p); p++, scale /= 10)
                        x += (*p - '0') * scale;
        }
        *v = x;
        *end = p;
        return true;
}

/* Unit-marked numbers: "45 %", "21°", "70 °F", "21ºC", "70F". */
static void scan_marked(const char *text, Reading *r) {
        for (const char *p = text; *p;) {
                double v;
                const char *e;
                bool boundary = p == text || !(isalnum((unsigned char) p[-1]) || p[-1] == '.' || p[-1] == ',');
                if (!boundary || !parse_decimal(p, &v, &e)) {
                        p++;
                        continue;
                }
                const char *q = skip_spaces(e);
                size_t dl;
                if (*q == '%') {
                        if (!r->has_humidity && v <= 100) {
                                r->has_humidity = true;
                                r->humidity = v;
                        }
                } else if (starts_with_degree(q, &dl) || ((*e == 'F' || *e == 'C') && !isalpha((unsigned char) e[1]))) {
                        const char *u = starts_with_degree(q, &dl) ? skip_spaces(q + dl) : e;
                        if (!r->has_temp) {
                                r->has_temp = true;
                                r->temp = v;
                                r->temp_f = (*u == 'F' || *u == 'f') && !isalpha((unsigned char) u[1]);
                                r->temp_c = (*u == 'C' || *u == 'c') && !isalpha((unsigned char) u[1]);
                        }
                }
                p = e;
        }
}

/* The first number shortly after a word: "Humidité relative : 45", "Temperature 70". */
static bool number_after(const char *folded, const char *word, double *v) {
        const char *p = strstr(folded, word);
        if (!p)
                return false;
        p += strlen(word);
        for (size_t i = 0; *p && !isdigit((unsigned char) *p); p++, i++)
                if (i >= 30 || strchr("\n;|", *p))
                        return false;
        const char *e;
        return parse_decimal(p, v, &e);
}

/* Half away from zero, without libm. */
static long round_half(double x) {
        return (long) (x < 0 ? x - 0.5 : x + 0.5);
}

char *report_humidity_from_text(const char *text) {
        Reading r = {};
        if (isempty(text))
                return NULL;
        scan_marked(text, &r);
        if (!r.has_temp || !r.has_humidity) {
                _cleanup_free_ char *folded = text_fold(text);
                double v;
                if (!r.has_humidity && (number_after(folded, "humidit", &v) || number_after(folded, "hr ", &v)) &&
                    v <= 100) {
                        r.has_humidity = true;
                        r.humidity = v;
                }
                if (!r.has_temp && number_after(folded, "temp", &v)) {
                        r.has_temp = true;
                        r.temp = v;
                }
        }
        if (r.has_temp && (r.temp_f || (!r.temp_c && r.temp > 50)))
                r.temp = (r.temp - 32) * 5 / 9;
        if (r.has_temp && r.has_humidity)
                return xasprintf("%ld°, %ld%%", round_half(r.temp), round_half(r.humidity));
        if (r.has_temp)
                return xasprintf("%ld°", round_half(r.temp));
        if (r.has_humidity)
                return xasprintf("%ld%%", round_half(r.humidity));
        return NULL;
}

static char **fold_list(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        char **f = xmalloc((n + 1) * sizeof(char *));
        for (size_t i = 0; i < n; i++)
                f[i] = text_fold(l[i]);
        f[n] = NULL;
        return f;
}

static void strv_freep(char ***l) {
        for (char **p = *l; p && *p; p++)
                free(*p);
        free(*l);
}

static const char *match_folded(char *const *keywords, char *const *folded_keywords, const char *text) {
        if (!keywords || isempty(text))
                return NULL;
        _cleanup_free_ char *folded = text_fold(text);
        for (size_t i = 0; keywords[i]; i++)
                if (*folded_keywords[i] && strstr(folded, folded_keywords[i]))
                        return keywords[i];
        return NULL;
}

const char *report_match_keyword(char *const *keywords, const char *text) {
        _cleanup_(strv_freep) char **folded = fold_list(keywords);
        return match_folded(keywords, folded, text);
}

/* ---- The builder -------------------------------------------------------------------------- */

/* A client that belongs to an institution (first matching institution wins). */
typedef struct Member {
        char *client_id;
        char *client_name;
        size_t inst;
} Member;

typedef struct Entry {
        char *id;
        bool measurement;
        char *text;        /* Description: summary, then comment */
        char *piano;
        const Member *member;
        char *fields[REPORT_COLUMNS];
        bool dropped;
} Entry;

enum {
        COL_DATE, COL_TYPE, COL_DESCRIPTION, COL_CLIENT, COL_MAKE, COL_MODEL, COL_SERIAL, COL_PIANO_TYPE,
        COL_YEAR, COL_LOCATION, COL_TECHNICIAN, COL_HUMIDITY,
};

typedef struct Builder {
        const Settings *settings;
        Member *members;
        size_t n_members;
        FILE **files;          /* one per tab, alerts last */
        char **paths;
        ReportResult *result;
        Entry *day;            /* the current Montréal day's entries, query order */
        size_t n_day, cap_day;
        char day_key[16];
        char **folded_keywords; /* folded once */
} Builder;

static void entry_clear(Entry *e) {
        free(e->id);
        free(e->text);
        free(e->piano);
        for (size_t i = 0; i < REPORT_COLUMNS; i++)
                free(e->fields[i]);
        *e = (Entry) {};
}

static void member_list_free(Member *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].client_id);
                free(m[i].client_name);
        }
        free(m);
}

static void add_member(Builder *b, const char *id, const char *name, size_t inst) {
        for (size_t i = 0; i < b->n_members; i++)
                if (streq(b->members[i].client_id, id)) {
                        if (!b->members[i].client_name && name)
                                b->members[i].client_name = xstrdup(name);
                        return;
                }
        Member *m = realloc(b->members, (b->n_members + 1) * sizeof(Member));
        if (!m)
                abort();
        b->members = m;
        b->members[b->n_members++] = (Member) {
                .client_id = xstrdup(id), .client_name = name ? xstrdup(name) : NULL, .inst = inst,
        };
}

static const Member *find_member(const Builder *b, const char *client_id) {
        if (!client_id)
                return NULL;
        for (size_t i = 0; i < b->n_members; i++)
                if (streq(b->members[i].client_id, client_id))
                        return &b->members[i];
        return NULL;
}

/* Institution clients: the configured ids, and the clients whose name matches a pattern
 * (a few thousand clients: read once, matched here so the folding rules live in one place). */
static int load_members(Db *db, Builder *b) {
        const Settings *s = b->settings;
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, "SELECT external_id, company_name FROM gazelle_clients WHERE deleted_at IS NULL",
                         DB_NO_PARAMS, &c);
        while (r >= 0 && (r = db_cursor_next(c)) > 0) {
                const char *id = db_cursor_text(c, 0), *name = db_cursor_text(c, 1);
                for (size_t i = 0; id && i < s->n_institutions; i++)
                        if (institution_matches(&s->institutions[i], id, name)) {
                                add_member(b, id, name, i);
                                break;
                        }
        }
        if (r < 0)
                return r;
        /* Listed ids count even when the client row is missing (a partial sync). */
        for (size_t i = 0; i < s->n_institutions; i++)
                for (char **id = s->institutions[i].client_ids; id && *id; id++)
                        add_member(b, *id, NULL, i);
        return 0;
}

static char *join_text(const char *summary, const char *comment) {
        bool hs = !isempty(summary), hc = !isempty(comment);
        char *s;
        if (hs && hc && !streq(summary, comment))
                s = xasprintf("%s — %s", summary, comment);
        else
                s = xstrdup(hs ? summary : hc ? comment : "");
        if (strlen(s) > REPORT_CELL_MAX) {
                size_t n = REPORT_CELL_MAX;
                while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80) /* whole UTF-8 characters */
                        n--;
                s[n] = 0;
        }
        return s;
}

static bool is_tme(const char *id) {
        return id && strncmp(id, "tme_", 4) == 0;
}

static int write_row(Builder *b, const Entry *e) {
        size_t inst = e->member->inst;
        int r = csv_write_record(b->files[inst], (const char *const *) e->fields, REPORT_COLUMNS);
        if (r < 0)
                return r;
        b->result->tabs[inst].rows++;

        const char *kw = match_folded(b->settings->maintenance_keywords, b->folded_keywords, e->text);
        if (!kw)
                return 0;
        const char *alert[REPORT_ALERT_COLUMNS];
        alert[0] = e->fields[COL_DATE];
        alert[1] = b->result->tabs[inst].title;
        for (size_t i = 1; i < REPORT_COLUMNS; i++)
                alert[i + 1] = e->fields[i];
        alert[REPORT_ALERT_COLUMNS - 1] = kw;
        size_t a = b->result->n_tabs - 1;
        r = csv_write_record(b->files[a], alert, REPORT_ALERT_COLUMNS);
        if (r >= 0)
                b->result->tabs[a].rows++;
        return r;
}

static bool same_group(const Entry *a, const Entry *b) {
        return a->member->inst == b->member->inst && streq_ptr(a->piano, b->piano);
}

/* One Montréal day: drop duplicates (keeping a tme_ entry's content at the first position),
 * fold measurements into the same piano's services, write what is left in query order. */
static int flush_day(Builder *b) {
        Entry *d = b->day;
        size_t n = b->n_day;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i && !d[i].dropped; j++) {
                        if (d[j].dropped || !same_group(&d[i], &d[j]) || d[i].measurement != d[j].measurement ||
                            !streq(d[i].text, d[j].text))
                                continue;
                        if (is_tme(d[i].id) && !is_tme(d[j].id)) {
                                Entry t = d[j];
                                d[j] = d[i];
                                d[i] = t;
                        }
                        d[i].dropped = true;
                        b->result->duplicates++;
                }

        for (size_t i = 0; i < n; i++) {
                if (d[i].dropped || !d[i].measurement || !d[i].piano)
                        continue;
                bool folded = false;
                for (size_t j = 0; j < n; j++) {
                        if (d[j].dropped || d[j].measurement || !same_group(&d[i], &d[j]))
                                continue;
                        folded = true;
                        /* Newest measurement first in query order: the first one wins. */
                        if (!d[j].fields[COL_HUMIDITY] && d[i].fields[COL_HUMIDITY])
                                d[j].fields[COL_HUMIDITY] = xstrdup(d[i].fields[COL_HUMIDITY]);
                        /* The folded measurement's text still counts for the maintenance alerts
                         * (dedup is done, so text is only matched from here on). */
                        if (!isempty(d[i].text)) {
                                char *t = xasprintf("%s\n%s", strempty(d[j].text), d[i].text);
                                free(d[j].text);
                                d[j].text = t;
                        }
                }
                if (folded) {
                        d[i].dropped = true;
                        b->result->folded++;
                }
        }

        int r = 0;
        for (size_t i = 0; i < n; i++) {
                if (!d[i].dropped && r >= 0)
                        r = write_row(b, &d[i]);
                entry_clear(&d[i]);
        }
        b->n_day = 0;
        return r;
}

static const char *const query_columns =
        "t.external_id, t.occurred_at, t.type, t.summary, t.comment, t.user_external_id, "
        "u.first_name, u.last_name";

/* $1, $2: the two types; $3…: the institution client ids. Entries belong to their piano's
 * client; an entry without a known piano to its own client. Both halves use the indexes
 * (pianos by client, then timeline by piano; timeline by client and type). */
static char *build_query(size_t n_ids) {
        size_t cap = 64 + n_ids * 8;
        _cleanup_free_ char *in = xmalloc(cap);
        size_t len = 0;
        for (size_t i = 0; i < n_ids; i++)
                len += (size_t) snprintf(in + len, cap - len, "%s$%zu", i ? ", " : "", i + 3);
        in[len] = 0;
        return xasprintf(
                "SELECT %s, t.piano_external_id, p.client_external_id, p.make, p.model, p.serial_number, p.type, "
                "p.year, p.location "
                "FROM gazelle_pianos p "
                "JOIN gazelle_timeline_entries t ON t.piano_external_id = p.external_id "
                "LEFT JOIN gazelle_users u ON u.external_id = t.user_external_id "
                "WHERE p.client_external_id IN (%s) AND t.type IN ($1, $2) "
                "AND t.deleted_at IS NULL AND t.occurred_at IS NOT NULL "
                "UNION ALL "
                "SELECT %s, NULL, t.client_external_id, NULL, NULL, NULL, NULL, NULL, NULL "
                "FROM gazelle_timeline_entries t "
                "LEFT JOIN gazelle_users u ON u.external_id = t.user_external_id "
                "WHERE t.client_external_id IN (%s) AND t.type IN ($1, $2) "
                "AND t.deleted_at IS NULL AND t.occurred_at IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM gazelle_pianos p2 WHERE p2.external_id = t.piano_external_id) "
                "ORDER BY 2 DESC, 1 DESC",
                query_columns, in, query_columns, in);
}

static char *technician_name(const Settings *s, const char *user_id, const char *first, const char *last) {
        _cleanup_free_ char *full = NULL;
        if (!isempty(first) && !isempty(last))
                full = xasprintf("%s %s", first, last);
        else if (!isempty(first) || !isempty(last))
                full = xstrdup(!isempty(first) ? first : last);
        return xstrdup(strempty(user_id ? settings_display_name(s, user_id, full) : full));
}

static Entry *day_push(Builder *b) {
        if (b->n_day == b->cap_day) {
                b->cap_day = b->cap_day ? b->cap_day * 2 : 32;
                Entry *e = realloc(b->day, b->cap_day * sizeof(Entry));
                if (!e)
                        abort();
                b->day = e;
        }
        Entry *e = &b->day[b->n_day++];
        *e = (Entry) {};
        return e;
}

static int read_entries(Db *db, Builder *b, const volatile sig_atomic_t *cancelled) {
        size_t n_ids = b->n_members;
        DbValue *params = xmalloc((n_ids + 2) * sizeof(DbValue));
        params[0] = DBV_TEXT_OR_NULL(TYPE_SERVICE);
        params[1] = DBV_TEXT_OR_NULL(TYPE_MEASUREMENT);
        for (size_t i = 0; i < n_ids; i++)
                params[i + 2] = DBV_TEXT_OR_NULL(b->members[i].client_id);
        _cleanup_free_ char *sql = build_query(n_ids);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db, sql, params, n_ids + 2, &c);
        free(params);

        while (r >= 0 && (r = db_cursor_next(c)) > 0) {
                usec_t at;
                if (parse_iso_utc(db_cursor_text(c, 1), &at) < 0)
                        continue; /* unreadable date: cannot be placed in the report */
                const Member *m = find_member(b, db_cursor_text(c, 9));
                if (!m)
                        continue;
                char day[16];
                format_local_date(local_date_of(at), day);
                if (!streq(day, b->day_key)) {
                        if ((r = flush_day(b)) < 0)
                                return r;
                        snprintf(b->day_key, sizeof b->day_key, "%s", day);
                }
                if (++b->result->entries % PROGRESS_EVERY == 0 && cancelled && *cancelled)
                        return -EINTR;

                Entry *e = day_push(b);
                const char *piano = db_cursor_text(c, 8);
                const char *year = db_cursor_text(c, 14);
                e->id = xstrdup(strempty(db_cursor_text(c, 0)));
                e->measurement = streq_ptr(db_cursor_text(c, 2), TYPE_MEASUREMENT);
                e->text = join_text(db_cursor_text(c, 3), db_cursor_text(c, 4));
                e->piano = piano ? xstrdup(piano) : NULL;
                e->member = m;
                e->fields[COL_DATE] = xstrdup(day);
                e->fields[COL_TYPE] = xstrdup(e->measurement ? "Mesure" : "Service");
                e->fields[COL_DESCRIPTION] = xstrdup(e->text);
                e->fields[COL_CLIENT] = xstrdup(strempty(m->client_name));
                e->fields[COL_MAKE] = xstrdup(strempty(db_cursor_text(c, 10)));
                e->fields[COL_MODEL] = xstrdup(strempty(db_cursor_text(c, 11)));
                e->fields[COL_SERIAL] = xstrdup(strempty(db_cursor_text(c, 12)));
                e->fields[COL_PIANO_TYPE] = xstrdup(piano_type_label(db_cursor_text(c, 13)));
                e->fields[COL_YEAR] = xstrdup(year && !streq(year, "0") ? year : "");
                e->fields[COL_LOCATION] = xstrdup(strempty(db_cursor_text(c, 15)));
                e->fields[COL_TECHNICIAN] = technician_name(b->settings, db_cursor_text(c, 5), db_cursor_text(c, 6),
                                                            db_cursor_text(c, 7));
                e->fields[COL_HUMIDITY] = e->measurement ? report_humidity_from_text(e->text) : NULL;
        }
        if (r < 0)
                return r;
        return flush_day(b);
}

void report_result_clear(ReportResult *r) {
        for (size_t i = 0; i < r->n_tabs; i++) {
                free(r->tabs[i].title);
                free(r->tabs[i].file);
        }
        free(r->tabs);
        r->tabs = NULL;
        r->n_tabs = 0;
}

static void builder_clear(Builder *b) {
        for (size_t i = 0; b->files && i < b->result->n_tabs; i++)
                if (b->files[i])
                        fclose(b->files[i]);
        free(b->files);
        for (size_t i = 0; b->paths && i < b->result->n_tabs; i++)
                free(b->paths[i]);
        free(b->paths);
        for (size_t i = 0; i < b->n_day; i++)
                entry_clear(&b->day[i]);
        free(b->day);
        member_list_free(b->members, b->n_members);
        strv_freep(&b->folded_keywords);
}

static int open_tab(Builder *b, size_t i, const char *dir, const char *const *header, size_t n) {
        ReportTab *t = &b->result->tabs[i];
        /* Two titles may fold to one slug: the later one gets its position appended. */
        _cleanup_free_ char *slug = report_file_slug(t->title);
        for (size_t j = 0; j < i; j++)
                if (strncmp(b->result->tabs[j].file, slug, strlen(slug)) == 0 &&
                    streq(b->result->tabs[j].file + strlen(slug), ".csv")) {
                        char *s = xasprintf("%s-%zu", slug, i + 1);
                        free(slug);
                        slug = s;
                }
        t->file = xasprintf("%s.csv", slug);
        b->paths[i] = xasprintf("%s/%s", dir, t->file);
        b->files[i] = fopen(b->paths[i], "wxe");
        if (!b->files[i])
                return -errno;
        /* A BOM so that spreadsheet programs read the file as UTF-8 (accents). */
        fputs("\xEF\xBB\xBF", b->files[i]);
        return csv_write_record(b->files[i], header, n);
}

static int close_tabs(Builder *b) {
        int r = 0;
        for (size_t i = 0; i < b->result->n_tabs; i++) {
                FILE *f = TAKE_PTR(b->files[i]);
                if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                        r = r < 0 ? r : -errno;
                if (fclose(f) != 0)
                        r = r < 0 ? r : -errno;
        }
        return r;
}

int report_build(Db *db, const Settings *settings, const char *dir, const volatile sig_atomic_t *cancelled,
                 ReportResult *res) {
        Builder b = { .settings = settings, .result = res, .folded_keywords = fold_list(settings->maintenance_keywords) };
        int r;

        res->n_tabs = settings->n_institutions + 1;
        res->tabs = calloc(res->n_tabs, sizeof(ReportTab));
        b.files = calloc(res->n_tabs, sizeof(FILE *));
        b.paths = calloc(res->n_tabs, sizeof(char *));
        if (!res->tabs || !b.files || !b.paths)
                abort();
        for (size_t i = 0; i < settings->n_institutions; i++)
                res->tabs[i].title = xstrdup(settings->institutions[i].title);
        res->tabs[res->n_tabs - 1].title = xstrdup(REPORT_ALERTS_TITLE);

        for (size_t i = 0; i < res->n_tabs; i++) {
                bool alerts = i == res->n_tabs - 1;
                r = open_tab(&b, i, dir, alerts ? report_alert_columns : report_columns,
                             alerts ? REPORT_ALERT_COLUMNS : REPORT_COLUMNS);
                if (r < 0) {
                        snprintf(res->error, sizeof res->error, "écriture de %s/%s : %s", dir,
                                 strempty(res->tabs[i].file), strerror(-r));
                        goto finish;
                }
        }

        r = load_members(db, &b);
        if (r < 0) {
                snprintf(res->error, sizeof res->error, "lecture des clients : %s", db_error(db));
                goto finish;
        }
        if (b.n_members > 0) {
                r = read_entries(db, &b, cancelled);
                if (r == -EINTR)
                        snprintf(res->error, sizeof res->error, "interrompu");
                else if (r == -EIO || r == -ENOSPC || r == -EDQUOT)
                        snprintf(res->error, sizeof res->error, "écriture des fichiers CSV dans %s : %s", dir,
                                 strerror(-r));
                else if (r < 0)
                        snprintf(res->error, sizeof res->error, "lecture de l'historique : %s", db_error(db));
                if (r < 0)
                        goto finish;
        }
        r = close_tabs(&b);
        if (r < 0)
                snprintf(res->error, sizeof res->error, "écriture des fichiers CSV dans %s : %s", dir, strerror(-r));
finish:
        builder_clear(&b);
        return r;
}

/* ---- Files: the day's directory, swapped in whole; retention ------------------------------ */

static bool day_name_valid(const char *name, LocalDate *ret) {
        if (strlen(name) != 10)
                return false;
        for (int i = 0; i < 10; i++)
                if (i == 4 || i == 7 ? name[i] != '-' : !isdigit((unsigned char) name[i]))
                        return false;
        return parse_local_date(name, ret) >= 0;
}

static int date_cmp(LocalDate a, LocalDate b) {
        if (a.year != b.year)
                return a.year < b.year ? -1 : 1;
        if (a.month != b.month)
                return a.month < b.month ? -1 : 1;
        return a.day < b.day ? -1 : a.day > b.day;
}

static void rm_tree_shallow(const char *dir) {
        /* Our directories hold plain files only. */
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
                (void) unlink(p);
        }
        (void) rmdir(dir);
}

int report_retention(const char *reports_dir, LocalDate today, unsigned keep, unsigned *deleted) {
        LocalDate oldest = local_date_add_days(today, -(int) keep + 1);
        _cleanup_(closedirp) DIR *d = opendir(reports_dir);
        if (!d)
                return -errno;
        *deleted = 0;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                LocalDate day;
                _cleanup_free_ char *p = xasprintf("%s/%s", reports_dir, de->d_name);
                if (day_name_valid(de->d_name, &day)) {
                        if (date_cmp(day, oldest) >= 0)
                                continue;
                        rm_tree_shallow(p);
                        if (access(p, F_OK) == 0)
                                r = r < 0 ? r : -EBUSY;
                        else
                                (*deleted)++;
                } else if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".old-", 5) == 0)
                        rm_tree_shallow(p); /* left by a killed run; the task lock says none is live */
        }
        return r;
}

/* tmp becomes reports/<day>: a plain rename, or an exchange with the day's earlier directory
 * (then removed), so a reader sees either the old set of files or the new one, never a mix. */
static int publish_day(const char *reports_dir, const char *tmp, const char *day) {
        _cleanup_free_ char *final = xasprintf("%s/%s", reports_dir, day);
        int r = fsync_directory(tmp);
        if (r < 0)
                return r;
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                if (errno != EEXIST)
                        return -errno;
                if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) < 0)
                        return -errno;
                rm_tree_shallow(tmp); /* now the old files */
        }
        return fsync_directory(reports_dir);
}

/* ---- The task ----------------------------------------------------------------------------- */

static const char *const GOOGLE_CREDENTIAL = "google-service-account.json";

/* The service-account key: the credential, else the file named by GOOGLE_APPLICATION_CREDENTIALS.
 * NULL (and 0) when neither is configured. */
static int load_google_key(const Config *c, GoogleKey **ret, char *error, size_t error_size) {
        _cleanup_free_ char *json = NULL;
        *ret = NULL;
        int r = config_read_secret(GOOGLE_CREDENTIAL, NULL, &json);
        if (r < 0) {
                snprintf(error, error_size, "credential %s illisible (%s)", GOOGLE_CREDENTIAL, strerror(-r));
                return r;
        }
        const char *path = c->google_application_credentials;
        if (!json && !isempty(path)) {
                r = read_file_bounded(path, 65536, &json);
                if (r < 0) {
                        snprintf(error, error_size, "GOOGLE_APPLICATION_CREDENTIALS=%s : fichier illisible (%s)", path,
                                 strerror(-r));
                        return r;
                }
        }
        if (!json)
                return 0;
        char why[256] = "";
        r = google_key_parse(json, ret, why, sizeof why);
        explicit_bzero(json, strlen(json)); /* the private key */
        if (r < 0) {
                snprintf(error, error_size, "clé de compte de service Google (%s) invalide : %s",
                         path && !isempty(path) ? path : GOOGLE_CREDENTIAL, why);
                return r;
        }
        return 0;
}

static cJSON *stats_tabs(const ReportResult *res, cJSON *notes) {
        cJSON *tabs = cJSON_CreateObject();
        for (size_t i = 0; i < res->n_tabs; i++) {
                cJSON_AddNumberToObject(tabs, res->tabs[i].title, (double) res->tabs[i].rows);
                if (res->tabs[i].rows == 0) {
                        _cleanup_free_ char *note = xasprintf("%s : aucune ligne (onglet écrit avec l'en-tête seul)",
                                                              res->tabs[i].title);
                        cJSON_AddItemToArray(notes, cJSON_CreateString(note));
                }
        }
        return tabs;
}

/* "UQAM 7599, Vincent d'Indy 6571, …" for the run's message. */
static char *tabs_summary(const ReportResult *res) {
        char *s = xstrdup("");
        for (size_t i = 0; i < res->n_tabs; i++) {
                char *n = xasprintf("%s%s%s %" PRIu64, s, i ? ", " : "", res->tabs[i].title, res->tabs[i].rows);
                free(s);
                s = n;
        }
        return s;
}

static int publish_to_sheets(RunContext *ctx, GoogleKey **key, const char *spreadsheet_id, const char *dir,
                             const ReportResult *res, TaskResult *result, char *error, size_t error_size) {
        _cleanup_(google_sheets_freep) GoogleSheets *g = NULL;
        int r = google_sheets_new(key, ctx->config->google_token_url, ctx->config->sheets_api_url, spreadsheet_id,
                                  ctx->cancelled, &g);
        if (r < 0) {
                snprintf(error, error_size, "client HTTP : %s", strerror(-r));
                return r;
        }
        google_sheets_set_secrets(g, ctx->config->secrets);
        GoogleTab *tabs = calloc(res->n_tabs, sizeof(GoogleTab));
        char **paths = calloc(res->n_tabs, sizeof(char *));
        if (!tabs || !paths)
                abort();
        for (size_t i = 0; i < res->n_tabs; i++) {
                paths[i] = xasprintf("%s/%s", dir, res->tabs[i].file);
                tabs[i] = (GoogleTab) {
                        .title = res->tabs[i].title,
                        .csv_path = paths[i],
                        .rows = res->tabs[i].rows + 1,
                        .columns = i == res->n_tabs - 1 ? REPORT_ALERT_COLUMNS : REPORT_COLUMNS,
                };
        }
        log_progress(&ctx->log, "Rapport : écriture dans Google Sheets (%s)", spreadsheet_id);
        GoogleWriteState state = GOOGLE_WRITE_NOT_STARTED;
        r = google_sheets_publish(g, tabs, res->n_tabs, &state, error, error_size);
        unsigned requests = 0, retries = 0;
        google_sheets_counters(g, &requests, &retries);
        cJSON_AddNumberToObject(result->stats, "requests", requests);
        cJSON_AddNumberToObject(result->stats, "retries", retries);
        cJSON_AddBoolToObject(result->stats, "sheet_written", r >= 0);
        if (r < 0 && state == GOOGLE_WRITE_NOT_STARTED) {
                size_t l = strlen(error);
                snprintf(error + l, error_size - l, " — le classeur n'a pas été modifié");
        }
        for (size_t i = 0; i < res->n_tabs; i++)
                free(paths[i]);
        free(paths);
        free(tabs);
        return r;
}

int report_task_run(RunContext *ctx, TaskResult *result) {
        const Config *c = ctx->config;
        const Settings *s = &c->settings;
        char error[768] = "";
        int r;

        /* A key that does not parse fails before any work, with the reason. */
        _cleanup_(google_key_freep) GoogleKey *key = NULL;
        r = load_google_key(c, &key, error, sizeof error);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Rapport non généré : %s", error);
                return r;
        }
        const char *spreadsheet_id = s->spreadsheet_id; /* $REPORT_SPREADSHEET_ID applied by config_load() */

        LocalDate today = local_date_of(now_realtime());
        char day[16];
        format_local_date(today, day);
        _cleanup_free_ char *reports_dir = xasprintf("%s/reports", c->state_dir);
        r = mkdir_p(reports_dir, 0700);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Rapport non généré : répertoire %s impossible à créer (%s)",
                                reports_dir, strerror(-r));
                return r;
        }
        unsigned deleted = 0;
        if (!ctx->options.dry_run) /* also removes temporaries of killed runs */
                (void) report_retention(reports_dir, today, REPORT_KEEP_DAYS, &deleted);

        _cleanup_free_ char *tmp = xasprintf("%s/.tmp-%s-%d", reports_dir, day, (int) getpid());
        if (mkdir(tmp, 0700) < 0) {
                r = -errno;
                task_result_set(result, RUN_ERROR, "Rapport non généré : %s (%s)", tmp, strerror(-r));
                return r;
        }

        usec_t t0 = now_monotonic();
        log_progress(&ctx->log, "Rapport : lecture de l'historique");
        _cleanup_(report_result_clear) ReportResult res = {};
        r = report_build(ctx->db, s, tmp, ctx->cancelled, &res);
        uint64_t build_ms = (now_monotonic() - t0) / USEC_PER_MSEC;
        if (r < 0) {
                rm_tree_shallow(tmp);
                task_result_set(result, RUN_ERROR, "Rapport non généré : %s", res.error);
                return r;
        }

        cJSON *notes = cJSON_CreateArray();
        cJSON_AddItemToObject(result->stats, "rows", stats_tabs(&res, notes));
        cJSON_AddItemToObject(result->stats, "notes", notes); /* owned by stats, still filled below */
        cJSON_AddNumberToObject(result->stats, "entries_read", (double) res.entries);
        cJSON_AddNumberToObject(result->stats, "folded", (double) res.folded);
        cJSON_AddNumberToObject(result->stats, "duplicates", (double) res.duplicates);
        cJSON_AddNumberToObject(result->stats, "build_ms", (double) build_ms);

        if (ctx->options.dry_run) {
                rm_tree_shallow(tmp);
                task_result_set(result, RUN_SUCCESS, "Simulation : rapport construit (%" PRIu64 " entrées lues), rien écrit",
                                res.entries);
                return 0;
        }
        r = publish_day(reports_dir, tmp, day);
        if (r < 0) {
                rm_tree_shallow(tmp);
                task_result_set(result, RUN_ERROR, "Rapport non publié : %s/%s (%s)", reports_dir, day, strerror(-r));
                return r;
        }
        _cleanup_free_ char *dir = xasprintf("%s/%s", reports_dir, day);
        cJSON_AddStringToObject(result->stats, "csv_dir", dir);
        cJSON_AddNumberToObject(result->stats, "csv_days_deleted", deleted);

        _cleanup_free_ char *summary = tabs_summary(&res);

        if (!key || isempty(spreadsheet_id)) {
                if (key)
                        cJSON_AddItemToArray(notes, cJSON_CreateString(
                                "clé Google configurée mais aucun classeur (REPORT_SPREADSHEET_ID) : CSV seulement"));
                task_result_set(result, RUN_SUCCESS, "Rapport généré en CSV (%s) dans %s%s", summary, dir,
                                key ? "" : " ; Google Sheets non configuré");
                return 0;
        }
        cJSON_AddStringToObject(result->stats, "spreadsheet_id", spreadsheet_id);
        r = publish_to_sheets(ctx, &key, spreadsheet_id, dir, &res, result, error, sizeof error);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Rapport CSV écrit dans %s, mais Google Sheets a échoué : %s", dir, error);
                return r;
        }
        task_result_set(result, RUN_SUCCESS, "Rapport généré (%s) : Google Sheets %s et CSV dans %s", summary,
                        spreadsheet_id, dir);
        return 0;
}
