/* SPDX-License-Identifier: MIT */
/* settings.h — the structured configuration file (README, "Structured settings"): technicians, fallback address,
 * institutions for the report and the alert exclusions, maintenance keywords, spreadsheet id,
 * mail sender and transport. Loaded and validated with the rest of the configuration, before
 * any work; a bad file fails with one line naming the key ("technicians[2].email: …").
 * A missing file means the built-in defaults (Piano-Tek's institutions and keywords, no
 * technicians); the path is $GAZELLE_CONFIG, else <sysconfdir>/gazelle-scheduler/config.json
 * for the system instance or $XDG_CONFIG_HOME/gazelle-scheduler/config.json for a user. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Technician {
        char *id;            /* Gazelle user id, "usr_…" */
        char *full_name;     /* "Nicolas Lessard" */
        char *display_name;  /* "Nick": what every person-facing text uses */
        char *email;         /* may be NULL: then alerts go to the fallback address */
        char **aliases;      /* other user ids or names that mean this technician; NULL-terminated */
} Technician;

typedef struct Institution {
        char *title;          /* report tab title, "UQAM" */
        char **client_ids;    /* NULL-terminated */
        char **name_patterns; /* case- and accent-insensitive substrings of the client's name; NULL-terminated */
} Institution;

typedef enum MailTransport {
        MAIL_TRANSPORT_AUTO,     /* SendGrid if its key is set, else SMTP if SMTP_URL is set, else outbox */
        MAIL_TRANSPORT_SENDGRID,
        MAIL_TRANSPORT_SMTP,
        MAIL_TRANSPORT_OUTBOX,
} MailTransport;

typedef struct Settings {
        char *path;                   /* the file read, or NULL when defaults */
        Technician *technicians;
        size_t n_technicians;
        char *fallback_email;         /* alerts of unknown technicians; NULL → admin_email */
        char *admin_email;            /* failure notifications */
        Institution *institutions;    /* report tabs, in order */
        size_t n_institutions;
        Institution excluded;         /* alert exclusions (title unused) */
        char **maintenance_keywords;  /* NULL-terminated */
        char *spreadsheet_id;         /* report.spreadsheet_id; $REPORT_SPREADSHEET_ID overrides (config.c) */
        char *sender_email;
        char *sender_name;
        MailTransport transport;
        char *outbox_dir;             /* NULL → <state dir>/outbox */
} Settings;

/* $GAZELLE_CONFIG, else the default place for the system or a user instance; owned, or NULL. */
char *settings_default_path(bool system);
/* Fills *s from path (NULL: built-in defaults only); config_load() applies $REPORT_SPREADSHEET_ID.
 * 0, or -EINVAL with error set to one line naming the file and the key; -errno when the file
 * cannot be read. */
int settings_load(Settings *s, const char *path, char *error, size_t error_size);
void settings_clear(Settings *s);

/* The technician whose id or alias matches (exact id, or case-insensitive alias), or NULL. */
const Technician *settings_find_technician(const Settings *s, const char *id_or_alias);
/* The technician whose email matches, ignoring case, or NULL. */
const Technician *settings_find_technician_by_email(const Settings *s, const char *email);
/* Display name of a Gazelle user id: the configured display name, else fallback (may be NULL). */
const char *settings_display_name(const Settings *s, const char *user_id, const char *fallback);
/* Whether a client (id, name) belongs to an institution: id listed, or a name pattern matches
 * case- and accent-insensitively. */
bool institution_matches(const Institution *inst, const char *client_id, const char *client_name);
/* Lowercase ASCII folding of UTF-8 French text (é→e, Ç→c, œ→oe, ’→'); owned result. */
char *text_fold(const char *s);
