/* SPDX-License-Identifier: MIT */
/* journal.c — sd_journal_sendv() with our structured fields; the same line on stderr unless
 * stderr is the journal already; sd_notify STATUS. Every text passes redact() first (secrets
 * masked, valid UTF-8) and is cut on a character boundary.
 * The identifier is set once in main() before anything logs: it is the process's name. The
 * secrets are the loaded configuration's registry (Config.secrets), which config_load() lends
 * the sink: where a process writes is process-wide by nature, and a log call deep in a library
 * has no context to hand it. */
#include "journal.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "redact.h"
#include "utf8.h"

#define MESSAGE_MAX 2048
#define MAX_FIELDS 24

static const char *identifier = "gazelle-scheduler";
static const Secrets *sink_secrets;

void log_set_identifier(const char *ident) {
        identifier = ident;
}

void log_set_secrets(const Secrets *secrets) {
        sink_secrets = secrets;
}

void log_forget_secrets(const Secrets *secrets) {
        if (sink_secrets == secrets)
                sink_secrets = NULL;
}

char *log_redact(const char *text, size_t max) {
        return redact_cut(sink_secrets, text, max);
}

void print_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *safe = redact_vformat(sink_secrets, MESSAGE_MAX, fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s\n", safe);
}

static void iov_add_field(struct iovec *iov, size_t *n, char *field) {
        if (*n < MAX_FIELDS)
                iov[(*n)++] = (struct iovec) { .iov_base = field, .iov_len = strlen(field) };
}

/* systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected stderr to. A journal
 * entry is invisible to whoever reads our stderr elsewhere (a terminal, a pipe, a file, a test),
 * and journald may not even be there to take it (sd_journal_sendv() then still succeeds). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (isempty(e) || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

int log_full(const LogContext *ctx, int priority, int error, const char *message_id, const char *status,
             const char *const *extra, const char *fmt, ...) {
        va_list ap;

        int saved_errno = errno;
        /* %m in fmt then names the error, as with systemd's log_*_errno(). */
        if (error != 0)
                errno = abs(error);
        va_start(ap, fmt);
        _cleanup_free_ char *message = redact_vformat(sink_secrets, MESSAGE_MAX, fmt, ap);
        va_end(ap);
        errno = saved_errno;

        struct iovec iov[MAX_FIELDS];
        size_t n = 0;
        _cleanup_free_ char *f_msg = xasprintf("MESSAGE=%s", message);
        _cleanup_free_ char *f_prio = xasprintf("PRIORITY=%d", priority);
        _cleanup_free_ char *f_ident = xasprintf("SYSLOG_IDENTIFIER=%s", identifier);
        _cleanup_free_ char *f_id = message_id ? xasprintf("MESSAGE_ID=%s", message_id) : NULL;
        _cleanup_free_ char *f_task = ctx && ctx->task ? xasprintf("GAZELLE_TASK=%s", ctx->task) : NULL;
        _cleanup_free_ char *f_run = ctx && !isempty(ctx->run_id) ? xasprintf("GAZELLE_RUN_ID=%s", ctx->run_id) : NULL;
        _cleanup_free_ char *f_trig = ctx && ctx->trigger ? xasprintf("GAZELLE_TRIGGER=%s", ctx->trigger) : NULL;
        _cleanup_free_ char *f_status = status ? xasprintf("GAZELLE_STATUS=%s", status) : NULL;
        _cleanup_free_ char *f_errno = error ? xasprintf("ERRNO=%d", abs(error)) : NULL;

        iov_add_field(iov, &n, f_msg);
        iov_add_field(iov, &n, f_prio);
        iov_add_field(iov, &n, f_ident);
        char *optional[] = { f_id, f_task, f_run, f_trig, f_status, f_errno };
        for (size_t i = 0; i < ELEMENTSOF(optional); i++)
                if (optional[i])
                        iov_add_field(iov, &n, optional[i]);
        char *extra_safe[MAX_FIELDS] = {};
        size_t n_extra = 0;
        for (const char *const *e = extra; e && *e && n_extra < MAX_FIELDS; e++) {
                extra_safe[n_extra] = redact_cut(sink_secrets, *e, MESSAGE_MAX);
                iov_add_field(iov, &n, extra_safe[n_extra++]);
        }

        int r = sd_journal_sendv(iov, (int) n);
        if (r < 0 || !stderr_is_journal())
                fprintf(stderr, "%s\n", message);
        for (size_t i = 0; i < n_extra; i++)
                free(extra_safe[i]);

        return error ? -abs(error) : 0;
}

void log_progress(const LogContext *ctx, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *message = redact_vformat(sink_secrets, 512, fmt, ap);
        va_end(ap);

        (void) sd_notifyf(false, "STATUS=%s", message);
        log_full(ctx, LOG_INFO, 0, NULL, NULL, NULL, "%s", message);
}
