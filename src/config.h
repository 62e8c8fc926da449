/* config.h — settings from the environment and secrets from systemd credentials, validated
 * once at start. A bad setting fails with one line naming it, before any work. */
#pragma once

#include <stdbool.h>

#include "http.h"
#include "redact.h"
#include "settings.h"

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
        char *admin_group;         /* $GAZELLE_ADMIN_GROUP, default gazelle-admin */
        unsigned idle_exit_sec;    /* $GAZELLE_IDLE_EXIT_SEC, daemon idle exit, default 30 */
        Settings settings;         /* the JSON file: $GAZELLE_CONFIG | default place (settings.h) */
        Secrets *secrets;          /* every secret loaded: masked in every text that leaves (redact.h) */
        char error[512];           /* the one line that says what is wrong */
} Config;

/* Fills *c; returns 0 or -EINVAL with c->error set ("BACKUP_KEEP=abc: expected …"). Before
 * anything else, every secret setting (credential or environment variable) is registered in
 * c->secrets, which the journal sink masks from then on (even when loading fails). */
int config_load(Config *c, BusScope bus);
void config_clear(Config *c);

/* A secret from $CREDENTIALS_DIRECTORY/<credential>, else the environment variable; NULL
 * when neither is set. Trailing newlines are stripped. -errno on unreadable credential. */
int config_read_secret(const char *credential, const char *env, char **ret);

/* The bus scope the process was started for: an explicit flag wins, then $GAZELLE_BUS, then
 * the system bus for root on a systemd-booted host, the user bus otherwise. */
BusScope config_default_bus(void);

/* The Gazelle API client's environment settings, read when a Gazelle client is made (a bad one
 * fails the task that needs Gazelle, not every command): GAZELLE_API_URL, GAZELLE_TOKEN_URL
 * (https://, or http:// to loopback), GAZELLE_AUTHORIZE_URL, GAZELLE_REDIRECT_URI,
 * GAZELLE_MAX_CONCURRENCY (1-16, default 2) and the retry policy GAZELLE_HTTP_MAX_ATTEMPTS,
 * _TIMEOUT_SEC, _CONNECT_TIMEOUT_SEC, _BUDGET_SEC, _BACKOFF_MS, _LOW_SPEED_SEC. Its secrets are
 * read by config_read_secret(). */
typedef struct GazelleSettings {
        char *api_url;
        char *token_url;
        char *authorize_url;
        char *redirect_uri;
        unsigned max_concurrency;
        HttpPolicy http;
} GazelleSettings;

/* 0, or -EINVAL with error set to one French line naming the variable. */
int gazelle_settings_load(GazelleSettings *s, char *error, size_t error_size);
void gazelle_settings_clear(GazelleSettings *s);
