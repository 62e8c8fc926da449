/* SPDX-License-Identifier: MIT */
/* config.h — settings from the environment and secrets from systemd credentials, validated
 * once at start by one table (config.c: name, kind, range, default). A bad setting fails with
 * one line naming the variable, what is wrong with its value and what is accepted, before any
 * row or email (the CLI exits 2).
 *
 * Every environment variable the product reads as a setting is a row of that table; the only
 * other variables read are the ones systemd, the login session or the terminal set (STATE_DIRECTORY,
 * CREDENTIALS_DIRECTORY, INVOCATION_ID, JOURNAL_STREAM, MONITOR_*, XDG_STATE_HOME,
 * XDG_CONFIG_HOME, HOME, USER, COLUMNS). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "redact.h"
#include "settings.h"
#include "timeutil.h"

typedef enum BusScope {
        BUS_SYSTEM,
        BUS_USER,
} BusScope;

typedef struct Config {
        BusScope bus;
        char *state_dir;           /* $STATE_DIRECTORY | $XDG_STATE_HOME/gazelle-scheduler | ~/.local/state/… */
        char *sqlite_path;         /* <state_dir>/gazelle-scheduler.sqlite */
        char *database_url;        /* secret: credential database-url | $DATABASE_URL; NULL → SQLite */
        char *backup_dir;          /* $BACKUP_DIR | <state_dir>/backups */
        unsigned backup_keep;      /* $BACKUP_KEEP, 1…1000, default 10 */
        char *backup_sqlite_path;  /* $BACKUP_SQLITE_PATH: another SQLite file to back up */
        char *admin_group;         /* the build's admin_group (gazelle-admin); $GAZELLE_ADMIN_GROUP on a user bus only */
        unsigned idle_exit_sec;    /* $GAZELLE_IDLE_EXIT_SEC, daemon idle exit, default 30 */
        unsigned lease_seconds;    /* $GAZELLE_LEASE_SECONDS, a task lease's life, 3…3600, default 60 */
        /* Gazelle API client */
        char *gazelle_api_url;     /* $GAZELLE_API_URL */
        char *gazelle_token_url;   /* $GAZELLE_TOKEN_URL */
        char *gazelle_authorize_url; /* $GAZELLE_AUTHORIZE_URL */
        char *gazelle_redirect_uri;  /* $GAZELLE_REDIRECT_URI */
        unsigned gazelle_max_concurrency;  /* $GAZELLE_MAX_CONCURRENCY, 1…16 */
        unsigned http_max_attempts;        /* $GAZELLE_HTTP_MAX_ATTEMPTS, 1…20 */
        unsigned http_timeout_sec;         /* $GAZELLE_HTTP_TIMEOUT_SEC */
        unsigned http_connect_timeout_sec; /* $GAZELLE_HTTP_CONNECT_TIMEOUT_SEC */
        unsigned http_budget_sec;          /* $GAZELLE_HTTP_BUDGET_SEC */
        unsigned http_backoff_ms;          /* $GAZELLE_HTTP_BACKOFF_MS */
        unsigned http_low_speed_sec;       /* $GAZELLE_HTTP_LOW_SPEED_SEC */
        unsigned sync_delete_max_percent;  /* $GAZELLE_SYNC_DELETE_MAX_PERCENT, 0…100 */
        /* Sync RV & Alertes, mail */
        usec_t alerts_max_lateness;        /* $ALERTS_MAX_LATENESS, 1s…7d, default 4h */
        char *smtp_url;            /* $SMTP_URL: smtp:// or smtps:// (may carry a password: never shown) */
        char *sendgrid_api_url;    /* $SENDGRID_API_URL */
        /* Rapport Timeline */
        char *google_application_credentials; /* $GOOGLE_APPLICATION_CREDENTIALS: key file */
        char *google_token_url;    /* $GOOGLE_TOKEN_URL */
        char *sheets_api_url;      /* $SHEETS_API_URL */
        char *report_spreadsheet_id; /* $REPORT_SPREADSHEET_ID: overrides report.spreadsheet_id */
        Settings settings;         /* the JSON file: $GAZELLE_CONFIG | default place (settings.h) */
        Secrets *secrets;          /* every secret loaded: masked in every text that leaves (redact.h) */
        char error[512];           /* the one line that says what is wrong */
} Config;

/* Fills *c; returns 0 or -EINVAL with c->error set ("BACKUP_KEEP=abc: expected …"). Before
 * anything else, every secret setting (credential or environment variable) is registered in
 * c->secrets, which the journal sink masks from then on (even when loading fails). */
int config_load(Config *c, BusScope bus);
void config_clear(Config *c);

/* What `check-config` prints: every setting of the table with the value in effect and where it
 * came from (environment, credential or default), secrets masked; credentials present or not.
 * Call after a successful config_load(). */
void config_print(const Config *c, FILE *f);

/* A secret from $CREDENTIALS_DIRECTORY/<credential>, else the environment variable; NULL
 * when neither is set. Trailing newlines are stripped. -errno on unreadable credential. */
int config_read_secret(const char *credential, const char *env, char **ret);

/* The bus scope the process was started for: an explicit flag wins, then $GAZELLE_BUS, then
 * the system bus for root on a systemd-booted host, the user bus otherwise. */
BusScope config_default_bus(void);
