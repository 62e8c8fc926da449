/* SPDX-License-Identifier: MIT */
/* alerts.c — Sync RV & Alertes. The run: decide the target day (the Montréal day after the
 * run's 16:00 slot; a late catch-up skips), refresh that day's appointments from Gazelle, pick
 * the unconfirmed ones, and mail each technician their list once, through the alert ledger:
 * planned (pending) → committed as `sending` → the transport → sent / failed / uncertain. */
#include "alerts.h"

#include <inttypes.h>
#include <stdarg.h>

#include "alert-ledger.h"
#include "labels.h"
#include "mail.h"
#include "sync.h"

#define DAY_MARGIN_USEC (24 * 3600 * USEC_PER_SEC)
#define ERROR_SUMMARY_MAX 320

static const char *const class_names[_ALERT_CLASS_MAX] = {
        [ALERT_UNCONFIRMED] = "unconfirmed",
        [ALERT_EXCLUDED_CANCELLED] = "cancelled",
        [ALERT_EXCLUDED_TYPE] = "other_type",
        [ALERT_EXCLUDED_NO_CLIENT] = "no_client",
        [ALERT_EXCLUDED_NO_TECHNICIAN] = "no_technician",
        [ALERT_EXCLUDED_CONFIRMED] = "confirmed",
        [ALERT_EXCLUDED_INSTITUTION] = "excluded_institution",
        [ALERT_EXCLUDED_ABSENT] = "absent_from_gazelle",
};

const char *alert_class_to_string(AlertClass c) {
        return c < _ALERT_CLASS_MAX ? class_names[c] : "?";
}

AlertClass alert_classify(const Settings *s, const char *type, const char *status, bool deleted, const char *client_id,
                          const char *client_name, const char *user_id, bool confirmed_by_client) {
        if (deleted || !streq_ptr(status, "ACTIVE"))
                return ALERT_EXCLUDED_CANCELLED;
        if (!streq_ptr(type, "APPOINTMENT"))
                return ALERT_EXCLUDED_TYPE;
        if (isempty(client_id))
                return ALERT_EXCLUDED_NO_CLIENT;
        if (isempty(user_id))
                return ALERT_EXCLUDED_NO_TECHNICIAN;
        if (confirmed_by_client)
                return ALERT_EXCLUDED_CONFIRMED;
        if (institution_matches(&s->excluded, client_id, client_name))
                return ALERT_EXCLUDED_INSTITUTION;
        return ALERT_UNCONFIRMED;
}

int alerts_target_day(usec_t started, usec_t max_lateness, LocalDate *ret_target, LocalDate *ret_slot,
                      usec_t *ret_lateness) {
        LocalDate slot = slot_day_of(started, ALERTS_SLOT_HOUR, 0);
        usec_t lateness = started - local_to_utc(slot, ALERTS_SLOT_HOUR, 0);
        *ret_slot = slot;
        *ret_target = local_date_add_days(slot, 1);
        *ret_lateness = lateness;
        return lateness > max_lateness ? 1 : 0;
}

char *alerts_format_day_fr(LocalDate d) {
        static const char *const days[] = { "dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi" };
        static const char *const months[] = { "janvier", "février", "mars",      "avril",   "mai",      "juin",
                                              "juillet", "août",    "septembre", "octobre", "novembre", "décembre" };
        time_t noon = (time_t) (local_to_utc(d, 12, 0) / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&noon, &tm);
        return xasprintf("%s %d%s %s %d", days[tm.tm_wday], d.day, d.day == 1 ? "er" : "", months[d.month - 1],
                         d.year);
}

/* ---- appointments of the day ------------------------------------------------------------- */

typedef struct Appointment {
        char *id;
        usec_t start;
        int64_t duration;
        bool all_day;
        char *title, *notes, *client_id, *client_name, *user_id, *piano_ids;
        char *contact; /* the default contact's name when the client is a company */
        char *phone, *email, *address;
        char *piano; /* filled for alerted appointments only */
        AlertClass class;
} Appointment;

static void appointment_clear(Appointment *a) {
        free(a->id);
        free(a->title);
        free(a->notes);
        free(a->client_id);
        free(a->client_name);
        free(a->user_id);
        free(a->piano_ids);
        free(a->contact);
        free(a->phone);
        free(a->email);
        free(a->address);
        free(a->piano);
}

typedef struct Day {
        Appointment *items;
        size_t n, cap;
} Day;

static void day_clear(Day *d) {
        for (size_t i = 0; i < d->n; i++)
                appointment_clear(&d->items[i]);
        free(d->items);
        *d = (Day) {};
}

static char *dup_nonempty(const char *s) {
        return isempty(s) ? NULL : xstrdup(s);
}

/* "a, b, c" of the non-empty parts; NULL when all are empty. */
static char *join_parts(const char *const *parts, size_t n, const char *sep) {
        char *out = NULL;
        for (size_t i = 0; i < n; i++) {
                if (isempty(parts[i]))
                        continue;
                char *s = out ? xasprintf("%s%s%s", out, sep, parts[i]) : xstrdup(parts[i]);
                free(out);
                out = s;
        }
        return out;
}

enum {
        COL_ID, COL_START, COL_DURATION, COL_ALL_DAY, COL_TITLE, COL_NOTES, COL_TYPE, COL_STATUS, COL_CONFIRMED,
        COL_CLIENT, COL_USER, COL_PIANOS, COL_DELETED, COL_COMPANY, COL_FIRST, COL_LAST, COL_PHONE, COL_EMAIL,
        COL_STREET1, COL_STREET2, COL_CITY, COL_REGION, COL_POSTAL, COL_SYNCED,
};

/* seen_at: the stamp of this run's complete appointment fetch ("" without one); an active
 * row it did not refresh is absent from Gazelle (deleted, or moved to another day). */
static void read_appointment(const Settings *s, DbCursor *c, const char *seen_at, Appointment *a) {
        const char *first = db_cursor_text(c, COL_FIRST), *last = db_cursor_text(c, COL_LAST);
        const char *name_parts[] = { first, last };
        _cleanup_free_ char *contact_name = join_parts(name_parts, 2, " ");
        const char *company = db_cursor_text(c, COL_COMPANY);
        const char *city_parts[] = { db_cursor_text(c, COL_CITY), db_cursor_text(c, COL_REGION) };
        _cleanup_free_ char *city = join_parts(city_parts, 2, " ");
        const char *street_parts[] = { db_cursor_text(c, COL_STREET1), db_cursor_text(c, COL_STREET2), city,
                                       db_cursor_text(c, COL_POSTAL) };

        *a = (Appointment) {
                .id = xstrdup(db_cursor_text(c, COL_ID)),
                .duration = db_cursor_text(c, COL_DURATION) ? db_cursor_int(c, COL_DURATION) : 0,
                .all_day = db_cursor_text(c, COL_ALL_DAY) && db_cursor_bool(c, COL_ALL_DAY),
                .title = dup_nonempty(db_cursor_text(c, COL_TITLE)),
                .notes = dup_nonempty(db_cursor_text(c, COL_NOTES)),
                .client_id = dup_nonempty(db_cursor_text(c, COL_CLIENT)),
                .client_name = !isempty(company) ? xstrdup(company) : TAKE_PTR(contact_name),
                .contact = !isempty(company) ? TAKE_PTR(contact_name) : NULL,
                .user_id = dup_nonempty(db_cursor_text(c, COL_USER)),
                .piano_ids = dup_nonempty(db_cursor_text(c, COL_PIANOS)),
                .phone = dup_nonempty(db_cursor_text(c, COL_PHONE)),
                .email = dup_nonempty(db_cursor_text(c, COL_EMAIL)),
                .address = join_parts(street_parts, ELEMENTSOF(street_parts), ", "),
        };
        bool confirmed = db_cursor_text(c, COL_CONFIRMED) && db_cursor_bool(c, COL_CONFIRMED);
        a->class = alert_classify(s, db_cursor_text(c, COL_TYPE), db_cursor_text(c, COL_STATUS),
                                  db_cursor_text(c, COL_DELETED) != NULL, a->client_id, a->client_name, a->user_id,
                                  confirmed);
        usec_t synced, seen;
        if (a->class == ALERT_UNCONFIRMED && !isempty(seen_at) && parse_iso_utc(seen_at, &seen) >= 0 &&
            (!db_cursor_text(c, COL_SYNCED) || parse_iso_utc(db_cursor_text(c, COL_SYNCED), &synced) < 0 || synced < seen))
                a->class = ALERT_EXCLUDED_ABSENT;
}

/* Every appointment starting in [start, end) of the Montréal day, sorted by time. The SQL
 * window is a day wider (SQLite compares text, and not every writer formats instants alike);
 * the exact bounds are applied to the parsed instants. */
static int load_day(Db *db, const Settings *s, LocalDate day, const char *seen_at, Day *ret) {
        usec_t start, end;
        char from[ISO_UTC_MAX], to[ISO_UTC_MAX];
        local_day_bounds(day, &start, &end);
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(db,
                         "SELECT a.external_id, a.start_at, a.duration_minutes, a.is_all_day, a.title, a.notes, "
                         "a.type, a.status, a.confirmed_by_client, a.client_external_id, a.user_external_id, "
                         "a.piano_external_ids, a.deleted_at, cl.company_name, ct.first_name, ct.last_name, ct.phone, "
                         "ct.email, ct.street1, ct.street2, ct.municipality, ct.region, ct.postal_code, a.synced_at "
                         "FROM gazelle_appointments a "
                         "LEFT JOIN gazelle_clients cl ON cl.external_id = a.client_external_id "
                         "LEFT JOIN gazelle_contacts ct ON ct.client_external_id = a.client_external_id "
                         "AND ct.is_default = $3 AND ct.deleted_at IS NULL "
                         "WHERE a.start_at >= $1 AND a.start_at < $2 "
                         "ORDER BY a.start_at, a.external_id, ct.external_id",
                         DB_PARAMS(DBV_TEXT_OR_NULL(format_iso_utc(start - DAY_MARGIN_USEC, from)),
                                   DBV_TEXT_OR_NULL(format_iso_utc(end + DAY_MARGIN_USEC, to)), DBV_B(true)),
                         &c);
        if (r < 0)
                return r;
        Day d = {};
        while ((r = db_cursor_next(c)) > 0) {
                usec_t t;
                const char *id = db_cursor_text(c, COL_ID);
                const char *st = db_cursor_text(c, COL_START);
                if (!st || parse_iso_utc(st, &t) < 0 || t < start || t >= end)
                        continue;
                if (d.n > 0 && streq(d.items[d.n - 1].id, id))
                        continue; /* a second default contact of the same client */
                if (d.n == d.cap) {
                        d.cap = d.cap ? 2 * d.cap : 32;
                        Appointment *p = realloc(d.items, d.cap * sizeof *p);
                        if (!p)
                                abort();
                        d.items = p;
                }
                read_appointment(s, c, seen_at, &d.items[d.n]);
                d.items[d.n++].start = t;
        }
        if (r < 0) {
                day_clear(&d);
                return r;
        }
        *ret = d;
        return 0;
}

/* "Yamaha U1 (Piano droit), n° de série 123, 1998 — Salle 2" for each piano id, "; "-joined. The
 * ids are stored as a JSON array or a list; any run of id characters is one id. */
static int describe_pianos(Db *db, const char *ids, char **ret) {
        char *out = NULL;
        const char *p = strempty(ids);
        *ret = NULL;
        while (*p) {
                size_t skip = strcspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
                p += skip;
                size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
                if (len == 0)
                        break;
                _cleanup_free_ char *id = strndup(p, len);
                p += len;
                _cleanup_(db_cursor_freep) DbCursor *c = NULL;
                int r = db_query(db,
                                 "SELECT make, model, type, serial_number, year, location FROM gazelle_pianos "
                                 "WHERE external_id = $1",
                                 DB_PARAMS(DBV_TEXT_OR_NULL(id)), &c);
                if (r >= 0)
                        r = db_cursor_next(c);
                if (r < 0) {
                        free(out);
                        return r;
                }
                if (r == 0)
                        continue;
                const char *mm[] = { db_cursor_text(c, 0), db_cursor_text(c, 1) };
                _cleanup_free_ char *name = join_parts(mm, 2, " ");
                const char *type_fr = piano_type_label(db_cursor_text(c, 2));
                _cleanup_free_ char *type = *type_fr ? xasprintf("(%s)", type_fr) : NULL;
                _cleanup_free_ char *serial = db_cursor_text(c, 3) ? xasprintf("n° de série %s", db_cursor_text(c, 3))
                                                                   : NULL;
                const char *parts1[] = { name, type };
                _cleanup_free_ char *head = join_parts(parts1, 2, " ");
                const char *parts2[] = { head, serial, db_cursor_text(c, 4) };
                _cleanup_free_ char *desc = join_parts(parts2, 3, ", ");
                const char *parts3[] = { desc, db_cursor_text(c, 5) };
                _cleanup_free_ char *full = join_parts(parts3, 2, " — ");
                if (!full)
                        continue;
                char *n = out ? xasprintf("%s; %s", out, full) : xstrdup(full);
                free(out);
                out = n;
        }
        *ret = out;
        return 0;
}

/* ---- grouping and the email -------------------------------------------------------------- */

typedef struct Group {
        const char *key;          /* ledger technician: configured id, or the raw Gazelle user id */
        const Technician *tech;   /* NULL: unknown to the configuration */
        Appointment **items;      /* unconfirmed, by time */
        size_t n;
        Appointment **to_send;    /* those the ledger says are still due */
        size_t n_to_send;
        size_t already_sent, already_queued, uncertain;
} Group;

static void groups_free(Group *g, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(g[i].items);
                free(g[i].to_send);
        }
        free(g);
}

static const char *group_name(const Group *g) {
        return g->tech ? g->tech->display_name : g->key;
}

static size_t group_by_technician(const Settings *s, Day *day, Group **ret) {
        Group *groups = NULL;
        size_t n = 0;
        for (size_t i = 0; i < day->n; i++) {
                Appointment *a = &day->items[i];
                if (a->class != ALERT_UNCONFIRMED)
                        continue;
                const Technician *t = settings_find_technician(s, a->user_id);
                const char *key = t ? t->id : a->user_id;
                size_t k;
                for (k = 0; k < n && !streq(groups[k].key, key); k++)
                        ;
                if (k == n) {
                        Group *p = realloc(groups, (n + 1) * sizeof *p);
                        if (!p)
                                abort();
                        groups = p;
                        groups[n++] = (Group) { .key = key, .tech = t };
                }
                Group *g = &groups[k];
                Appointment **items = realloc(g->items, (g->n + 1) * sizeof *items);
                if (!items)
                        abort();
                g->items = items;
                g->items[g->n++] = a;
        }
        *ret = groups;
        return n;
}

static const char *recipient_of(const Settings *s, const Group *g) {
        if (g->tech && !isempty(g->tech->email))
                return g->tech->email;
        return !isempty(s->fallback_email) ? s->fallback_email : s->admin_email;
}

static void format_time(const Appointment *a, char buf[static 16]) {
        if (a->all_day) {
                snprintf(buf, 16, "Journée");
                return;
        }
        time_t t = (time_t) (a->start / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&t, &tm);
        snprintf(buf, 16, "%02d:%02d", tm.tm_hour, tm.tm_min);
}

typedef struct Email {
        char *subject, *text, *html;
} Email;

static void email_clear(Email *e) {
        free(e->subject);
        free(e->text);
        free(e->html);
}

/* One labelled line of an appointment, in both parts; the HTML gets escaped client text. */
static void detail(char **text, char **html, const char *label, const char *value) {
        if (isempty(value))
                return;
        _cleanup_free_ char *ev = html_escape(value);
        *text = strextendf(*text, "  %s : %s\n", label, value);
        *html = strextendf(*html, "<tr><th style=\"text-align:left;padding-right:1em\">%s</th><td>%s</td></tr>\n", label, ev);
}

static void compose_alert(const Group *g, const char *day_fr, bool tomorrow, Email *e) {
        const char *name = group_name(g);
        bool known = g->tech;
        _cleanup_free_ char *ename = html_escape(name), *eday = html_escape(day_fr), *ekey = html_escape(g->key);
        size_t n = g->n_to_send;

        e->subject = xasprintf("Rendez-vous non confirmé%s du %s%s%s (%zu)", n > 1 ? "s" : "", day_fr,
                               known ? " — " : " — technicien inconnu ", known ? name : g->key, n);
        if (known) {
                e->text = xasprintf("Bonjour %s,\n\n", name);
                e->html = xasprintf("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Rendez-vous "
                                    "non confirmés</title></head><body>\n<p>Bonjour %s,</p>\n", ename);
        } else {
                e->text = xasprintf("Bonjour,\n\nCes rendez-vous sont attribués dans Gazelle à un technicien absent de la "
                                    "configuration (utilisateur Gazelle %s) : merci de les transmettre.\n\n", g->key);
                e->html = xasprintf("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Rendez-vous "
                                    "non confirmés</title></head><body>\n<p>Bonjour,</p>\n<p>Ces rendez-vous sont "
                                    "attribués dans Gazelle à un technicien absent de la configuration (utilisateur "
                                    "Gazelle <code>%s</code>) : merci de les transmettre.</p>\n", ekey);
        }
        /* "de demain" only when it is: a --target-date run may be about another day. */
        e->text = strextendf(e->text, "%s rendez-vous %s%s, qui %s pas encore confirmé%s par le client :\n\n",
               n > 1 ? "Voici les" : "Voici le", tomorrow ? "de demain, " : "du ", day_fr,
               n > 1 ? "ne sont" : "n'est", n > 1 ? "s" : "");
        e->html = strextendf(e->html, "<p>%s rendez-vous %s<strong>%s</strong>, qui %s pas encore confirmé%s par le "
               "client&nbsp;:</p>\n", n > 1 ? "Voici les" : "Voici le", tomorrow ? "de demain, " : "du ", eday,
               n > 1 ? "ne sont" : "n'est", n > 1 ? "s" : "");

        for (size_t i = 0; i < n; i++) {
                const Appointment *a = g->to_send[i];
                char when[16];
                format_time(a, when);
                const char *client = a->client_name ? a->client_name : a->client_id;
                _cleanup_free_ char *eclient = html_escape(client);
                e->text = strextendf(e->text, "%s — %s\n", when, client);
                e->html = strextendf(e->html, "<h3>%s — %s</h3>\n<table>\n", when, eclient);
                detail(&e->text, &e->html, "Contact", a->contact);
                detail(&e->text, &e->html, "Téléphone", a->phone);
                detail(&e->text, &e->html, "Courriel", a->email);
                detail(&e->text, &e->html, "Adresse", a->address);
                detail(&e->text, &e->html, "Piano", a->piano);
                detail(&e->text, &e->html, "Titre", a->title);
                detail(&e->text, &e->html, "Notes", a->notes);
                e->text = strextendf(e->text, "\n");
                e->html = strextendf(e->html, "</table>\n");
        }
        const char *who = n > 1 ? "ces clients" : "ce client";
        e->text = strextendf(e->text, "Pense à communiquer avec %s pour confirmer.\n\n-- \nGazelle Scheduler, Piano-Tek\n", who);
        e->html = strextendf(e->html, "<p>Pense à communiquer avec %s pour confirmer.</p>\n<p>-- <br>Gazelle Scheduler, "
               "Piano-Tek</p>\n</body></html>\n", who);
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct Totals {
        size_t appointments, unconfirmed, emails_sent, queued, failed, already_sent, already_queued, uncertain, recovered;
        size_t by_class[_ALERT_CLASS_MAX];
        char first_error[ERROR_SUMMARY_MAX];
} Totals;

static char *ids_joined(Appointment *const *items, size_t n) {
        char *out = xstrdup("");
        for (size_t i = 0; i < n; i++) {
                char *s = xasprintf("%s%s%s", out, i ? " " : "", items[i]->id);
                free(out);
                out = s;
        }
        return out;
}

/* The journal entry of one email: ids only, never the client data it carried. */
static void journal_alert(RunContext *ctx, const Group *g, Appointment *const *items, size_t n, const char *state,
                          const char *transport, const char *target, const char *provider_id, const char *error) {
        _cleanup_free_ char *ids = ids_joined(items, n);
        _cleanup_free_ char *f_ids = xasprintf("GAZELLE_APPOINTMENT_IDS=%s", ids);
        _cleanup_free_ char *f_tech = xasprintf("GAZELLE_TECHNICIAN=%s", g->key);
        _cleanup_free_ char *f_state = xasprintf("GAZELLE_ALERT_STATE=%s", state);
        _cleanup_free_ char *f_transport = xasprintf("GAZELLE_TRANSPORT=%s", transport);
        _cleanup_free_ char *f_target = xasprintf("GAZELLE_TARGET_DATE=%s", target);
        _cleanup_free_ char *f_pid = provider_id ? xasprintf("GAZELLE_PROVIDER_MESSAGE_ID=%s", provider_id) : NULL;
        const char *extra[] = { f_ids, f_tech, f_state, f_transport, f_target, f_pid, NULL };
        bool bad = streq(state, "failed") || streq(state, "uncertain");
        log_full(&ctx->log, bad ? LOG_ERR : LOG_NOTICE, 0, MESSAGE_ID_ALERT_SENT, NULL, extra,
                 "Alerte %s : %s, %zu rendez-vous du %s (%s)%s%s", state, group_name(g), n, target, transport,
                 error ? " : " : "", strempty(error));
}

/* Plans every unconfirmed appointment of the group in the ledger and keeps those still due. */
static int plan_group(RunContext *ctx, Group *g, const char *target, Totals *t) {
        g->to_send = calloc(g->n ? g->n : 1, sizeof *g->to_send);
        if (!g->to_send)
                abort();
        for (size_t i = 0; i < g->n; i++) {
                LedgerState st;
                int r = ledger_plan(ctx->db, g->items[i]->id, target, g->key, ctx->run_id, now_realtime(), &st);
                if (r < 0)
                        return r;
                switch (st) {
                case LEDGER_SENT:
                        g->already_sent++;
                        break;
                case LEDGER_QUEUED: /* in the outbox already: queuing it again would duplicate it */
                        g->already_queued++;
                        break;
                case LEDGER_UNCERTAIN:
                case LEDGER_SENDING: /* cannot be: recovered at start under the task lock */
                        g->uncertain++;
                        break;
                default:
                        g->to_send[g->n_to_send++] = g->items[i];
                }
        }
        t->already_sent += g->already_sent;
        t->already_queued += g->already_queued;
        t->uncertain += g->uncertain;
        if (g->uncertain > 0)
                journal_alert(ctx, g, g->items, g->n, "uncertain", "-", target, NULL,
                              "sort inconnu après une interruption pendant l'envoi, non renvoyée");
        return 0;
}

static int send_group(RunContext *ctx, Mailer *mailer, Group *g, const char *target, const char *day_fr, Totals *t,
                      cJSON *tech_stats) {
        const Settings *s = &ctx->config->settings;
        const char *transport = mailer_transport(mailer);
        const char *to = recipient_of(s, g);
        _cleanup_free_ const char **ids = calloc(g->n_to_send, sizeof *ids);
        if (!ids)
                abort();
        for (size_t i = 0; i < g->n_to_send; i++) {
                ids[i] = g->to_send[i]->id;
                int r = describe_pianos(ctx->db, g->to_send[i]->piano_ids, &g->to_send[i]->piano);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the pianos of %s: %s", ids[i], db_error(ctx->db));
        }

        int r = ledger_begin_send(ctx->db, ids, g->n_to_send, target, g->key, ctx->run_id, to, transport,
                                  now_realtime());
        if (r < 0)
                return log_error_errno(r, "Failed to mark the alerts of %s as sending: %s", g->key, db_error(ctx->db));

        _cleanup_(email_clear) Email e = {};
        _cleanup_(mail_result_clear) MailResult res = {};
        if (!to) {
                res.outcome = MAIL_REFUSED;
                snprintf(res.error, sizeof res.error,
                         "aucune adresse : ni courriel du technicien, ni alerts.fallback_email, ni mail.admin_email");
        } else {
                LocalDate today = local_date_of(now_realtime()), day;
                LocalDate next = local_date_add_days(today, 1);
                bool tomorrow = parse_local_date(target, &day) >= 0 && next.year == day.year &&
                                next.month == day.month && next.day == day.day;
                compose_alert(g, day_fr, tomorrow, &e);
                MailMessage msg = {
                        .from_email = mailer_from_email(mailer),
                        .from_name = mailer_from_name(mailer),
                        .to_email = to,
                        .subject = e.subject,
                        .text = e.text,
                        .html = e.html,
                };
                (void) mailer_send(mailer, &msg, &res);
        }

        LedgerState final = res.outcome == MAIL_SENT        ? LEDGER_SENT
                            : res.outcome == MAIL_QUEUED    ? LEDGER_QUEUED
                            : res.outcome == MAIL_UNCERTAIN ? LEDGER_UNCERTAIN
                                                            : LEDGER_FAILED;
        const char *state = mail_outcome_to_string(res.outcome);
        r = ledger_end_send(ctx->db, ids, g->n_to_send, target, g->key, final, res.provider_id,
                            res.error[0] ? res.error : NULL, now_realtime());
        journal_alert(ctx, g, g->to_send, g->n_to_send, state, transport, target, res.provider_id,
                      res.error[0] ? res.error : NULL);
        if (r < 0)
                /* The rows stay `sending`: the next run reports them uncertain, never re-sends. */
                return log_error_errno(r, "Failed to record the outcome (%s) of the alerts of %s: %s", state, g->key,
                                       db_error(ctx->db));

        switch (res.outcome) {
        case MAIL_SENT:
                t->emails_sent++;
                break;
        case MAIL_QUEUED:
                t->queued++;
                break;
        case MAIL_UNCERTAIN:
                t->uncertain += g->n_to_send;
                break;
        default:
                t->failed++;
        }
        if (res.outcome != MAIL_SENT && res.outcome != MAIL_QUEUED && !t->first_error[0])
                snprintf(t->first_error, sizeof t->first_error, "%s : %.200s", group_name(g), res.error);
        cJSON_AddStringToObject(tech_stats, "email", state);
        return 0;
}

typedef struct Count {
        const char *key;
        size_t n;
} Count;

static void add_counts(cJSON *o, const Count *counts, size_t n) {
        for (size_t i = 0; i < n; i++)
                cJSON_AddNumberToObject(o, counts[i].key, (double) counts[i].n);
}

static cJSON *group_stats(cJSON *technicians, const Group *g) {
        cJSON *o = cJSON_AddObjectToObject(technicians, group_name(g));
        if (!g->tech)
                cJSON_AddBoolToObject(o, "unknown_technician", true);
        const Count counts[] = {
                { "unconfirmed", g->n },           { "to_send", g->n_to_send },
                { "already_sent", g->already_sent }, { "already_queued", g->already_queued },
                { "uncertain", g->uncertain },
        };
        add_counts(o, counts, ELEMENTSOF(counts));
        return o;
}

static void fill_stats(cJSON *stats, const char *target, const Totals *t, const char *transport) {
        cJSON_AddStringToObject(stats, "target_date", target);
        const Count counts[] = {
                { "appointments", t->appointments }, { "unconfirmed", t->unconfirmed },
                { "emails_sent", t->emails_sent },   { "queued", t->queued },
                { "already_sent", t->already_sent }, { "already_queued", t->already_queued },
                { "failed", t->failed },             { "uncertain", t->uncertain },
        };
        add_counts(stats, counts, ELEMENTSOF(counts));
        cJSON_AddStringToObject(stats, "transport", transport);
        cJSON *ex = cJSON_AddObjectToObject(stats, "excluded");
        for (int c = ALERT_UNCONFIRMED + 1; c < _ALERT_CLASS_MAX; c++)
                cJSON_AddNumberToObject(ex, alert_class_to_string(c), (double) t->by_class[c]);
}

static void set_message(TaskResult *result, const char *day_fr, const Totals *t, const char *transport,
                        const char *outbox, const char *sync_error, const char *sync_warning, bool dry_run) {
        _cleanup_free_ char *m = xasprintf("Rendez-vous du %s : %zu non confirmé%s sur %zu", day_fr,
                                           t->unconfirmed, t->unconfirmed > 1 ? "s" : "", t->appointments);
        if (dry_run)
                m = strextendf(m, " ; simulation : aucun courriel envoyé");
        if (t->emails_sent)
                m = strextendf(m, " ; %zu courriel%s envoyé%s (%s)", t->emails_sent, t->emails_sent > 1 ? "s" : "",
                       t->emails_sent > 1 ? "s" : "", transport);
        if (t->queued)
                m = strextendf(m, " ; %zu courriel%s mis en file dans %s (pas envoyé%s)", t->queued, t->queued > 1 ? "s" : "",
                       outbox, t->queued > 1 ? "s" : "");
        if (t->already_sent)
                m = strextendf(m, " ; %zu alerte%s déjà envoyée%s", t->already_sent, t->already_sent > 1 ? "s" : "",
                       t->already_sent > 1 ? "s" : "");
        if (t->already_queued)
                m = strextendf(m, " ; %zu alerte%s déjà en file dans %s (pas envoyée%s)", t->already_queued,
                               t->already_queued > 1 ? "s" : "", outbox, t->already_queued > 1 ? "s" : "");
        if (t->failed)
                m = strextendf(m, " ; %zu courriel%s en échec (%s)", t->failed, t->failed > 1 ? "s" : "", t->first_error);
        if (t->uncertain)
                m = strextendf(m, " ; %zu alerte%s au sort incertain (envoi interrompu), non renvoyée%s : vérifiez "
                       "alert_ledger", t->uncertain, t->uncertain > 1 ? "s" : "", t->uncertain > 1 ? "s" : "");
        size_t absent = t->by_class[ALERT_EXCLUDED_ABSENT];
        if (absent)
                m = strextendf(m, " ; %zu rendez-vous absent%s de la réponse de Gazelle sans être marqué%s annulé%s, "
                               "non alerté%s : vérifiez-le%s dans Gazelle", absent, absent > 1 ? "s" : "",
                               absent > 1 ? "s" : "", absent > 1 ? "s" : "", absent > 1 ? "s" : "", absent > 1 ? "s" : "");
        if (sync_error)
                m = strextendf(m, " ; rendez-vous non rafraîchis depuis Gazelle, données de la dernière "
                               "synchronisation (%.300s)", sync_error);
        else if (sync_warning)
                m = strextendf(m, " ; rendez-vous du jour incertains, synchronisation incomplète (%.300s)", sync_warning);
        RunStatus status = t->failed                                          ? RUN_ERROR
                           : t->uncertain || sync_error || sync_warning || absent ? RUN_WARNING
                                                                                  : RUN_SUCCESS;
        task_result_set(result, status, "%s", m);
}

/* Decides the day; 1 when the run is a late catch-up that must skip (result filled). */
static int decide_target(RunContext *ctx, TaskResult *result, LocalDate *ret) {
        if (ctx->options.target_date.year > 0) {
                *ret = ctx->options.target_date;
                return 0;
        }
        usec_t lateness, max_lateness = ctx->config->alerts_max_lateness;
        LocalDate slot;
        if (alerts_target_day(ctx->started_at, max_lateness, ret, &slot, &lateness) > 0) {
                char d[16], t[16];
                format_local_date(slot, d);
                format_local_date(*ret, t);
                task_result_set(result, RUN_SKIPPED,
                                "Rattrapage ignoré : démarrée %" PRIu64 " h %02" PRIu64 " après le créneau de 16:00 du %s "
                                "(limite ALERTS_MAX_LATENESS %" PRIu64 " min), elle alerterait trop tard pour le %s. "
                                "Pour l'envoyer quand même : gazelle-scheduler run alerts --target-date %s",
                                lateness / (3600 * USEC_PER_SEC), lateness / (60 * USEC_PER_SEC) % 60, d,
                                max_lateness / (60 * USEC_PER_SEC), t, t);
                cJSON_AddStringToObject(result->stats, "target_date", t);
                cJSON_AddNumberToObject(result->stats, "lateness_seconds", (double) (lateness / USEC_PER_SEC));
                return 1;
        }
        return 0;
}

/* Refreshes the target day from Gazelle: the day before to the day after, so that the whole
 * Montréal day is fetched whether Gazelle reads the date filters as UTC or Montréal dates (a
 * UTC day ends at 19:00 or 20:00 here). A failed or skipped refresh leaves the store's data and
 * says so in *ret_error; one that could not tell which appointments vanished (deletions held
 * back, records without id) says why in *ret_warning. */
static int refresh_day(RunContext *ctx, LocalDate target, TaskResult *result, char seen_at[static ISO_UTC_MAX],
                       char **ret_error, char **ret_warning) {
        char target_s[16];
        TaskResult sync = { .stats = cJSON_CreateObject() };
        int r = sync_appointments_window(ctx, local_date_add_days(target, -1), local_date_add_days(target, 1), &sync,
                                         seen_at);
        format_local_date(target, target_s);
        if (r < 0 || (sync.status != RUN_SUCCESS && sync.status != RUN_WARNING)) {
                seen_at[0] = 0;
                *ret_error = xstrdup(sync.message ? sync.message : r < 0 ? strerror(-r) : "échec");
                log_run(&ctx->log, LOG_WARNING, "Appointment sync for %s did not run through, alerting from the store: %s",
                        target_s, *ret_error);
        } else if (sync.status == RUN_WARNING) {
                *ret_warning = xstrdup(strempty(sync.message));
                log_run(&ctx->log, LOG_WARNING, "Appointment sync for %s incomplete: %s", target_s, *ret_warning);
        }
        cJSON_AddItemToObject(result->stats, "sync", sync.stats);
        free(sync.message);
        return run_cancelled(ctx) ? -ECANCELED : 0;
}

int alerts_task_run(RunContext *ctx, TaskResult *result) {
        const Settings *s = &ctx->config->settings;
        LocalDate target;
        char target_s[16], err[256] = "";

        /* The transport is checked before anything else: a bad setting fails with one line. */
        _cleanup_(mailer_freep) Mailer *mailer = NULL;
        int r = mailer_new(ctx->config, ctx->cancelled, &mailer, err, sizeof err);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Configuration invalide : %s", err);
                return r;
        }
        r = decide_target(ctx, result, &target);
        if (r != 0)
                return r < 0 ? r : 0;
        format_local_date(target, target_s);
        _cleanup_free_ char *day_fr = alerts_format_day_fr(target);
        const char *transport = mailer_transport(mailer);
        _cleanup_free_ char *outbox = s->outbox_dir ? xstrdup(s->outbox_dir)
                                                    : xasprintf("%s/outbox", ctx->config->state_dir);

        r = ctx->options.dry_run ? 0 : ledger_recover(ctx->db, now_realtime());
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Registre des alertes illisible : %s", db_error(ctx->db));
                return r;
        }
        if (r > 0)
                log_run(&ctx->log, LOG_WARNING, "%d alerte(s) restée(s) « sending » après une interruption : "
                        "marquée(s) « uncertain », non renvoyée(s)", r);

        /* Live confirmedByClient for the day; without it the mirror of the last sync is used. */
        _cleanup_free_ char *sync_error = NULL, *sync_warning = NULL;
        char seen_at[ISO_UTC_MAX] = "";
        if (!ctx->options.no_sync) {
                r = refresh_day(ctx, target, result, seen_at, &sync_error, &sync_warning);
                if (r < 0)
                        return r;
        }

        _cleanup_(day_clear) Day day = {};
        r = load_day(ctx->db, s, target, seen_at, &day);
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Lecture des rendez-vous du %s impossible : %s", target_s,
                                db_error(ctx->db));
                return r;
        }
        Totals t = { .appointments = day.n };
        for (size_t i = 0; i < day.n; i++)
                t.by_class[day.items[i].class]++;
        t.unconfirmed = t.by_class[ALERT_UNCONFIRMED];

        Group *groups = NULL;
        size_t n_groups = group_by_technician(s, &day, &groups);
        cJSON *tech_stats = cJSON_CreateObject();
        for (size_t i = 0; i < n_groups && r >= 0; i++) {
                Group *g = &groups[i];
                if (ctx->options.dry_run) {
                        group_stats(tech_stats, g);
                        continue;
                }
                r = plan_group(ctx, g, target_s, &t);
                if (r < 0) {
                        task_result_set(result, RUN_ERROR, "Registre des alertes : %s", db_error(ctx->db));
                        break;
                }
                cJSON *o = group_stats(tech_stats, g);
                if (g->n_to_send == 0)
                        continue;
                if (run_cancelled(ctx)) {
                        r = -ECANCELED;
                        break;
                }
                r = send_group(ctx, mailer, g, target_s, day_fr, &t, o);
                if (r < 0)
                        task_result_set(result, RUN_ERROR, "Registre des alertes : %s", db_error(ctx->db));
        }
        groups_free(groups, n_groups);

        fill_stats(result->stats, target_s, &t, transport);
        cJSON_AddItemToObject(result->stats, "technicians", tech_stats);
        if (r < 0)
                return r;
        set_message(result, day_fr, &t, transport, outbox, sync_error, sync_warning, ctx->options.dry_run);
        return 0;
}
