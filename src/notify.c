/* SPDX-License-Identifier: MIT */
/* notify.c — the failure notification. systemd (≥ 251) tells an OnFailure= unit which
 * invocation failed (MONITOR_INVOCATION_ID, MONITOR_SERVICE_RESULT, MONITOR_EXIT_CODE,
 * MONITOR_EXIT_STATUS); the runner stored the same invocation id in scheduler_logs, so the mail
 * names the exact run, its message and its journal lines. Everything here is best effort except
 * the mail itself: a missing store or journal still gives a mail saying so. The notification
 * unit has no OnFailure= of its own, so a failing mail ends here, in the journal. */
#include "notify.h"

#include <systemd/sd-journal.h>

#include "journal.h"
#include "mail.h"
#include "store.h"
#include "tasks.h"
#include "utf8.h"

#define LINE_MAX_BYTES 400



static int add_match(sd_journal *j, const char *field, const char *value, bool *any) {
        if (isempty(value))
                return 0;
        _cleanup_free_ char *m = xasprintf("%s=%s", field, value);
        int r = *any ? sd_journal_add_disjunction(j) : 0;
        if (r >= 0)
                r = sd_journal_add_match(j, m, 0);
        *any = true;
        return r;
}

int notify_journal_tail(const char *unit, const char *invocation_id, const char *run_id, unsigned n, char **ret) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        bool any = false;
        int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        if (invocation_id || run_id) {
                /* Our own field for the runner's lines; systemd's for what the unit printed and for what
                 * the (system or user) manager said about it. */
                if ((r = add_match(j, "_SYSTEMD_INVOCATION_ID", invocation_id, &any)) < 0 ||
                    (r = add_match(j, "INVOCATION_ID", invocation_id, &any)) < 0 ||
                    (r = add_match(j, "USER_INVOCATION_ID", invocation_id, &any)) < 0 ||
                    (r = add_match(j, "GAZELLE_RUN_ID", run_id, &any)) < 0)
                        return r;
        } else if ((r = add_match(j, "_SYSTEMD_UNIT", unit, &any)) < 0 ||
                   (r = add_match(j, "_SYSTEMD_USER_UNIT", unit, &any)) < 0 ||
                   (r = add_match(j, "UNIT", unit, &any)) < 0)
                return r;

        char **lines = calloc(n ? n : 1, sizeof *lines);
        if (!lines)
                abort();
        size_t k = 0;
        r = sd_journal_seek_tail(j);
        while (r >= 0 && k < n && (r = sd_journal_previous(j)) > 0) {
                const void *data;
                size_t len;
                uint64_t t = 0;
                if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0)
                        continue;
                (void) sd_journal_get_realtime_usec(j, &t);
                char when[RFC3339_MAX];
                size_t skip = strlen("MESSAGE=");
                _cleanup_free_ char *m = strndup((const char *) data + skip, len - skip);
                if (!m)
                        abort();
                lines[k++] = xasprintf("%s %s", format_local_short(t, when), utf8_cut(m, LINE_MAX_BYTES));
        }
        char *out = xstrdup("");
        for (size_t i = k; i > 0; i--) {
                char *s = xasprintf("%s%s\n", out, lines[i - 1]);
                free(out);
                free(lines[i - 1]);
                out = s;
        }
        free(lines);
        *ret = out;
        return r < 0 ? r : 0;
}

/* The run of that invocation (or the task's newest run) from scheduler_logs. */
static void find_run(const Config *config, const Task *task, const char *invocation_id, RunRow *row, char **ret_note) {
        _cleanup_(db_closep) Db *db = NULL;
        int r = store_open(config, &db);
        if (r < 0) {
                *ret_note = xasprintf("base de données inaccessible (%s)", db ? db_error(db) : strerror(-r));
                return;
        }
        r = 0;
        if (!isempty(invocation_id)) {
                _cleanup_free_ char *id = NULL;
                r = db_query_text(db, "SELECT id FROM scheduler_logs WHERE invocation_id = $1 ORDER BY started_at DESC "
                                  "LIMIT 1", DB_PARAMS(DBV_TEXT_OR_NULL(invocation_id)), &id);
                if (r > 0 && id)
                        r = store_run_get(db, id, row);
        }
        if (r == 0 && task)
                r = store_run_last(db, task->name, NULL, NULL, row);
        if (r < 0)
                *ret_note = xasprintf("historique illisible (%s)", db_error(db));
        else if (r == 0)
                *ret_note = xstrdup("aucune exécution enregistrée : la tâche a échoué avant de démarrer");
}

static char *compose_text(const char *unit, const Task *task, const RunRow *run, const char *run_note,
                          const char *journal, const char *journal_note) {
        const char *result = getenv("MONITOR_SERVICE_RESULT"), *code = getenv("MONITOR_EXIT_CODE"),
                   *status = getenv("MONITOR_EXIT_STATUS");
        char host[256], started[RFC3339_MAX];
        host_name(host);
        char *s = xasprintf("Bonjour,\n\nL'unité %s (%s) a échoué sur %s.\n", unit, task ? task->label : "tâche inconnue",
                            host);
        char *n;
        if (!isempty(result)) {
                n = xasprintf("%sRésultat systemd : %s%s%s%s%s\n", s, result, code ? ", " : "", strempty(code),
                              status ? " " : "", strempty(status));
                free(s);
                s = n;
        }
        if (run->id)
                n = xasprintf("%s\nExécution %s (démarrée le %s, %s) : %s\n%s\n", s, run->id,
                              format_local_rfc3339(run->started_at, started), strempty(run->triggered_by),
                              strempty(run->status), strempty(run->message));
        else
                n = xasprintf("%s\nExécution : %s\n", s, strempty(run_note));
        free(s);
        s = n;
        n = xasprintf("%s\nDernières lignes du journal de cette exécution :\n%s%s\n"
                      "Pour tout voir : journalctl -u %s (--user-unit pour l'instance utilisateur)%s%s\n"
                      "et gazelle-scheduler logs.\n\n-- \nGazelle Scheduler, Piano-Tek\n",
                      s, isempty(journal) ? "(aucune)\n" : journal, journal_note ? journal_note : "", unit,
                      run->id ? ", journalctl GAZELLE_RUN_ID=" : "", strempty(run->id));
        free(s);
        return n;
}

int notify_failure(const Config *config, const char *unit) {
        const Task *task = task_by_unit(unit);
        LogContext log = { .task = task ? task->name : NULL };
        const char *invocation = getenv("MONITOR_INVOCATION_ID");

        /* The failure is in the journal whatever happens to the mail. */
        log_full(&log, LOG_ERR, 0, NULL, "error", NULL,
                 "Échec de %s : consultez journalctl -u %s (ou --user-unit) et gazelle-scheduler logs", unit, unit);
        if (strncmp(unit, "gazelle-notify-failure@", strlen("gazelle-notify-failure@")) == 0)
                return 0; /* never mail about a notification: that would be the loop */

        const char *to = config->settings.admin_email;
        if (isempty(to)) {
                log_warning("No mail.admin_email in %s: failure of %s reported in the journal only",
                            config->settings.path ? config->settings.path : "the settings", unit);
                return 0;
        }

        RunRow run = { .duration_seconds = -1 };
        _cleanup_free_ char *run_note = NULL, *journal = NULL, *journal_note = NULL;
        find_run(config, task, invocation, &run, &run_note);
        int r = notify_journal_tail(unit, invocation, run.id, NOTIFY_JOURNAL_LINES, &journal);
        if (r < 0)
                journal_note = xasprintf("(journal illisible : %s)\n", strerror(-r));
        if (run.id)
                log.run_id = run.id;

        char err[256] = "";
        _cleanup_(mailer_freep) Mailer *mailer = NULL;
        r = mailer_new(config, NULL, &mailer, err, sizeof err);
        if (r < 0) {
                run_row_clear(&run);
                return log_error_errno(r, "Cannot mail the failure of %s: %s", unit, err), 1;
        }
        /* Journal lines and stored messages were masked when written, by whichever process wrote
         * them; mask again with what this one knows, URL passwords included. */
        _cleanup_free_ char *raw = compose_text(unit, task, &run, run_note, journal, journal_note);
        _cleanup_free_ char *text = redact(config->secrets, raw);
        _cleanup_free_ char *subject = xasprintf("[Gazelle Scheduler] Échec : %s (%s)", task ? task->label : unit, unit);
        MailMessage msg = {
                .from_email = mailer_from_email(mailer),
                .from_name = mailer_from_name(mailer),
                .to_email = to,
                .subject = subject,
                .text = text,
        };
        _cleanup_(mail_result_clear) MailResult res = {};
        r = mailer_send(mailer, &msg, &res);
        _cleanup_free_ char *f_unit = xasprintf("GAZELLE_FAILED_UNIT=%s", unit);
        _cleanup_free_ char *f_state = xasprintf("GAZELLE_ALERT_STATE=%s", mail_outcome_to_string(res.outcome));
        _cleanup_free_ char *f_transport = xasprintf("GAZELLE_TRANSPORT=%s", mailer_transport(mailer));
        const char *extra[] = { f_unit, f_state, f_transport, NULL };
        log_full(&log, r < 0 ? LOG_ERR : LOG_NOTICE, 0, NULL, NULL, extra,
                 "Notification d'échec de %s à l'administrateur : %s (%s)%s%s", unit,
                 mail_outcome_to_string(res.outcome), mailer_transport(mailer), r < 0 ? " : " : "", res.error);
        run_row_clear(&run);
        return r < 0 ? 1 : 0;
}
