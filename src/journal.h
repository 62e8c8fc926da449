/* SPDX-License-Identifier: MIT */
/* journal.h — structured logging to the journal (and the same lines on stderr unless it is the
 * journal). The fixed MESSAGE_IDs are explained by src/gazelle-scheduler.catalog (journalctl -x). */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "util.h"

#define MESSAGE_ID_TASK_STARTED   "75cafe092c084a2b8a13489e34cce20c"
#define MESSAGE_ID_TASK_SUCCEEDED "3158460f5e6d46609bbc17db9b44279a"
#define MESSAGE_ID_TASK_WARNING   "10579d847e044e159db0cd41d8e145fb"
#define MESSAGE_ID_TASK_FAILED    "caa87ccb63e746c9a58188e0bf99f844"
#define MESSAGE_ID_TASK_SKIPPED   "1ddcf83100d14d15bd316675bfdc3f40"
#define MESSAGE_ID_ALERT_SENT     "3bb6f2bf00c242dcad50fa78143631b4"
#define MESSAGE_ID_BACKUP_CREATED "fb454b5ec76c4836b5c26e65e7514838"

/* The run a message belongs to; every field may be NULL. */
typedef struct LogContext {
        const char *task;
        const char *run_id;
        const char *trigger;
} LogContext;

/* One journal entry with GAZELLE_TASK/RUN_ID/TRIGGER from ctx, and, when not NULL, MESSAGE_ID
 * and GAZELLE_STATUS, plus extra "FIELD=value" strings (NULL-terminated, may be NULL). Also
 * printed to stderr, unless stderr is the journal stream systemd gave us (JOURNAL_STREAM).
 * When error != 0, errno is set to it while fmt is formatted, so "%m" names it, and the entry
 * gets ERRNO=. Returns -abs(error) when error != 0, else 0, so callers can
 * `return log_…(…, r, …)`. errno is left as it was. */
int log_full(const LogContext *ctx, int priority, int error, const char *message_id, const char *status,
             const char *const *extra, const char *fmt, ...) _printf_(7, 8);

#define log_run(ctx, prio, fmt, ...) log_full((ctx), (prio), 0, NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_error_errno(err, fmt, ...) log_full(NULL, LOG_ERR, (err), NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_warning_errno(err, fmt, ...) log_full(NULL, LOG_WARNING, (err), NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_debug_errno(err, fmt, ...) log_full(NULL, LOG_DEBUG, (err), NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_warning(fmt, ...) log_full(NULL, LOG_WARNING, 0, NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) log_full(NULL, LOG_INFO, 0, NULL, NULL, NULL, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) log_full(NULL, LOG_DEBUG, 0, NULL, NULL, NULL, fmt, ##__VA_ARGS__)

typedef struct Secrets Secrets;
/* The secrets every text is masked against before it leaves through this sink (journal,
 * stderr, STATUS=): config_load() lends its registry, config_clear() takes it back. */
void log_set_secrets(const Secrets *secrets);
void log_forget_secrets(const Secrets *secrets);
/* An owned copy of text as the sink would write it: secrets masked, valid UTF-8, at most max
 * bytes cut on a character boundary. */
char *log_redact(const char *text, size_t max);
/* One line on stderr only (a CLI's answer to its user), through the same redaction. */
void print_error(const char *fmt, ...) _printf_(1, 2);

/* SYSLOG_IDENTIFIER of this process: gazelle-scheduler or gazelle-schedulerd. */
void log_set_identifier(const char *ident);
/* Progress for `systemctl status` (sd_notify STATUS=) and, every call, a debug journal line. */
void log_progress(const LogContext *ctx, const char *fmt, ...) _printf_(2, 3);
