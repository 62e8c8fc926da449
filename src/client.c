/* SPDX-License-Identifier: MIT */
/* client.c — the commands that talk to gazelle-schedulerd: `start` (RunTask, optionally waiting
 * for TaskFinished), `logs` (the "Journal des tâches" in a terminal, or JSON) and
 * `status` (per-task health, a monitoring check). Data comes from the daemon when it can be
 * reached (it is bus-activated) and straight from the store otherwise, so the journal stays
 * readable when the bus or the daemon is broken. This is the deciding layer: it prints. */
#include "client.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <systemd/sd-bus.h>

#include "bus-errors.h"
#include "terminal-text.h"
#include "journal.h"
#include "manager.h"
#include "runner.h"
#include "store.h"
#include "task-lock.h"
#include "tasks.h"

#define LOGS_DEFAULT 20
#define LOGS_MAX 1000                             /* GetLogs' own cap */
#define WATCH_DEFAULT_SEC 30                      /* the old system's page refreshed every 30 s */
#define WAIT_DEFAULT_SEC (3 * 3600)
#define STORE_POLL_USEC (5 * USEC_PER_SEC)        /* --wait after the daemon went away */
#define STALE_AFTER_USEC (26 * 3600 * USEC_PER_SEC) /* a daily task, plus two hours of slack */
#define TERMINAL_WIDTH_DEFAULT 120
#define COLUMN_GAP "  "
#define EXIT_INTERRUPTED 130

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static inline void cJSON_freep(char **s) {
        if (*s)
                cJSON_free(*s);
}

/* ---- Text: durations, ages and the French labels ---------------------------------------- */

char *format_duration(int64_t seconds, char buf[static DURATION_MAX]) {
        if (seconds < 0)
                snprintf(buf, DURATION_MAX, "—");
        else if (seconds < 60)
                snprintf(buf, DURATION_MAX, "%" PRId64 "s", seconds);
        else if (seconds < 3600)
                snprintf(buf, DURATION_MAX, "%" PRId64 "m %02" PRId64 "s", seconds / 60, seconds % 60);
        else
                snprintf(buf, DURATION_MAX, "%" PRId64 "h %02" PRId64 "m", seconds / 3600, seconds / 60 % 60);
        return buf;
}

char *format_age(usec_t usec, char buf[static AGE_MAX]) {
        uint64_t s = usec / USEC_PER_SEC, m = s / 60, h = s / 3600, d = s / 86400;

        if (s < 60)
                snprintf(buf, AGE_MAX, "%" PRIu64 " s", s);
        else if (m < 60)
                snprintf(buf, AGE_MAX, "%" PRIu64 " min", m);
        else if (h < 48 && m % 60 == 0)
                snprintf(buf, AGE_MAX, "%" PRIu64 " h", h);
        else if (h < 48)
                snprintf(buf, AGE_MAX, "%" PRIu64 " h %" PRIu64 " min", h, m % 60);
        else if (h % 24 == 0)
                snprintf(buf, AGE_MAX, "%" PRIu64 " j", d);
        else
                snprintf(buf, AGE_MAX, "%" PRIu64 " j %" PRIu64 " h", d, h % 24);
        return buf;
}

const char *status_label(const char *status) {
        static const char *const labels[_RUN_STATUS_MAX] = {
                [RUN_SUCCESS] = "✅ Succès",   [RUN_ERROR] = "❌ Erreur",
                [RUN_RUNNING] = "⏳ En cours", [RUN_SKIPPED] = "⏭️ Ignoré",
                [RUN_WARNING] = "⚠️ Avertissement",
        };
        RunStatus s = run_status_from_string(status);
        return s != RUN_STATUS_NONE ? labels[s] : status ? status : "—";
}

char *trigger_label(const char *triggered_by, const char *user, const char *caller) {
        static const char *const labels[_RUN_TRIGGER_MAX] = {
                [TRIGGER_SCHEDULER] = "⏰ Auto", [TRIGGER_MANUAL] = "👤 Manuel",
                [TRIGGER_API] = "🔌 API",        [TRIGGER_CLI] = "💻 CLI",
        };
        RunTrigger t = run_trigger_from_string(triggered_by);
        const char *label = t != TRIGGER_NONE ? labels[t] : triggered_by ? triggered_by : "—";
        if (!triggered_by || t == TRIGGER_SCHEDULER)
                return xstrdup(label);
        /* The claimed user (an email, or a name) is a note; the caller is the account the bus
         * or the terminal vouched for. The CLI's claim ($USER) is worth nothing: only its caller. */
        if (t == TRIGGER_CLI)
                user = NULL;
        bool with_user = !isempty(user), with_caller = !isempty(caller) && !streq_ptr(user, caller);
        if (with_user && with_caller)
                return xasprintf("%s (%s, par %s)", label, user, caller);
        if (with_user || with_caller)
                return xasprintf("%s (%s)", label, with_user ? user : caller);
        return xstrdup(label);
}

/* Messages come from other programs: keep a one-line promise for every line we print. */
static void print_line(FILE *f, const char *text) {
        _cleanup_free_ char *safe = log_redact(text, SIZE_MAX);
        _cleanup_free_ char *one = text_fit(safe, SIZE_MAX);
        fprintf(f, "%s\n", one);
}

/* ---- Signals: Ctrl+C ends --watch and --wait cleanly ----------------------------------- */

/* The one global: a signal handler has nowhere else to write. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = sig;
}

static void catch_interrupts(void) {
        /* No SA_RESTART: the wait in progress must return EINTR and look at the flag. */
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
}

/* Sleeps until the deadline (monotonic) or a signal; false when interrupted. */
static bool sleep_until(usec_t deadline) {
        while (!interrupted) {
                usec_t now = now_monotonic();
                if (now >= deadline)
                        return true;
                struct timespec ts = { .tv_sec = (time_t) ((deadline - now) / USEC_PER_SEC),
                                       .tv_nsec = (long) ((deadline - now) % USEC_PER_SEC * 1000) };
                (void) nanosleep(&ts, NULL);
        }
        return false;
}

/* ---- Bus helpers ------------------------------------------------------------------------ */

static const char *scope_name(BusScope scope) {
        return scope == BUS_SYSTEM ? "system" : "user";
}

/* Fills e with a "cannot connect" error so every caller reports bus trouble one way. */
static int bus_connect(BusScope scope, sd_bus **ret, sd_bus_error *e) {
        int r = manager_bus_open(scope, ret);
        if (r < 0)
                return sd_bus_error_set_errnof(e, r, "Cannot connect to the %s bus: %s", scope_name(scope),
                                               strerror(-r));
        (void) sd_bus_error_add_map(gazelle_bus_errors);
        return 0;
}

static int scheduler_call(sd_bus *bus, const char *method, sd_bus_error *e, sd_bus_message **reply,
                          const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        int r = sd_bus_call_methodv(bus, BUS_NAME, BUS_PATH, BUS_INTERFACE, method, e, reply, types, ap);
        va_end(ap);
        return r;
}

typedef union DictValue {
        const char *s;
        int64_t x;
        uint32_t u;
        int b;
} DictValue;

/* Called per a{sv} entry of a supported type ('s', 'x', 'u', 'b'); others are skipped so that the
 * daemon can grow new keys without breaking older clients. */
typedef void (*DictEntryFunc)(const char *key, char type, const DictValue *v, void *userdata);

static int bus_read_entry(sd_bus_message *m, DictEntryFunc f, void *userdata) {
        const char *key, *contents;
        char type;
        DictValue v = {};

        int r = sd_bus_message_read(m, "s", &key);
        if (r >= 0)
                r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (streq(contents, "s"))
                r = sd_bus_message_read(m, "v", "s", &v.s);
        else if (streq(contents, "x"))
                r = sd_bus_message_read(m, "v", "x", &v.x);
        else if (streq(contents, "u"))
                r = sd_bus_message_read(m, "v", "u", &v.u);
        else if (streq(contents, "b"))
                r = sd_bus_message_read(m, "v", "b", &v.b);
        else
                return sd_bus_message_skip(m, "v");
        if (r < 0)
                return r;
        f(key, contents[0], &v, userdata);
        return 0;
}

/* Reads one a{sv}: 1 when read, 0 at the end of the enclosing array. */
static int bus_read_dict(sd_bus_message *m, DictEntryFunc f, void *userdata) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r <= 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = bus_read_entry(m, f, userdata);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static void set_string(char **field, const char *value) {
        free(*field);
        *field = xstrdup(value);
}

static void set_time(usec_t *field, const char *value) {
        usec_t t;
        if (parse_iso_utc(value, &t) >= 0)
                *field = t;
}

/* ---- Runs: from GetLogs or from the store ----------------------------------------------- */

typedef struct RunList {
        RunRow *rows;
        size_t n, allocated;
} RunList;

static void run_list_clear(RunList *l) {
        for (size_t i = 0; i < l->n; i++)
                run_row_clear(&l->rows[i]);
        free(l->rows);
        *l = (RunList) {};
}

/* Takes over *row's strings and leaves it empty. */
static void run_list_take(RunList *l, RunRow *row) {
        if (l->n == l->allocated) {
                l->allocated = l->allocated ? l->allocated * 2 : 32;
                l->rows = realloc(l->rows, l->allocated * sizeof *l->rows);
                if (!l->rows)
                        abort();
        }
        l->rows[l->n++] = *row;
        *row = (RunRow) { .duration_seconds = -1 };
}

static void run_row_set(const char *key, char type, const DictValue *v, void *userdata) {
        RunRow *row = userdata;
        static const struct {
                const char *key;
                size_t offset;
        } strings[] = {
                { "id", offsetof(RunRow, id) },
                { "task_name", offsetof(RunRow, task_name) },
                { "task_label", offsetof(RunRow, task_label) },
                { "status", offsetof(RunRow, status) },
                { "message", offsetof(RunRow, message) },
                { "stats", offsetof(RunRow, stats) },
                { "triggered_by", offsetof(RunRow, triggered_by) },
                { "triggered_by_user", offsetof(RunRow, triggered_by_user) },
                { "triggered_by_name", offsetof(RunRow, triggered_by_name) },
                { "invocation_id", offsetof(RunRow, invocation_id) },
                { "host", offsetof(RunRow, host) },
                { "caller_name", offsetof(RunRow, caller_name) },
        };

        if (type == 'x' && streq(key, "duration_seconds"))
                row->duration_seconds = v->x;
        else if (type == 'x' && streq(key, "pid"))
                row->pid = v->x;
        else if (type == 'u' && streq(key, "caller_uid")) {
                row->caller_uid = v->u;
                row->has_caller_uid = true;
        }
        else if (type != 's')
                return;
        else if (streq(key, "started_at"))
                set_time(&row->started_at, v->s);
        else if (streq(key, "completed_at"))
                set_time(&row->completed_at, v->s);
        else if (streq(key, "created_at"))
                set_time(&row->created_at, v->s);
        else
                for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                        if (streq(key, strings[i].key))
                                set_string((char **) ((char *) row + strings[i].offset), v->s);
}

/* The newest runs, the daemon's display names included: GetTaskLogs for one task, GetLogs for all. */
static int runs_from_bus(sd_bus *bus, unsigned limit, const Task *task, RunList *l, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };
        const char *method = task ? "GetTaskLogs" : "GetLogs";

        int r = task ? scheduler_call(bus, method, e, &reply, "su", task->name, limit)
                     : scheduler_call(bus, method, e, &reply, "u", limit);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        while (r >= 0 && l->n < limit && (r = bus_read_dict(reply, run_row_set, &row)) > 0)
                run_list_take(l, &row);
        if (r < 0 && !sd_bus_error_is_set(e))
                sd_bus_error_set_errnof(e, r, "Invalid %s reply: %s", method, strerror(-r));
        return r < 0 ? r : 0;
}

static int load_config(BusScope scope, Config *cfg) {
        int r = config_load(cfg, scope);
        if (r < 0)
                print_error("Invalid configuration: %s", cfg->error);
        return r;
}

/* A bad configuration is a usage error (exit 2, one line) before any bus or store is tried:
 * not the "stale task" exit 1 of status, nor a fallback note followed by the error. */
static int config_valid(BusScope scope) {
        _cleanup_(config_clear) Config cfg = {};
        return load_config(scope, &cfg);
}

/* Opens the store the way the runner does, reporting why not. */
static int open_store(BusScope scope, Config *cfg, Db **ret) {
        int r = load_config(scope, cfg);
        if (r < 0)
                return r;
        r = store_open(cfg, ret);
        if (r < 0) {
                print_error("Cannot open the store (%s): %s", cfg->database_url ? "PostgreSQL" : cfg->sqlite_path,
                            *ret ? db_error(*ret) : strerror(-r));
                *ret = db_close(*ret);
        }
        return r;
}

static int runs_from_store(BusScope scope, unsigned limit, const Task *task, RunList *l) {
        _cleanup_(config_clear) Config cfg = {};
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_(db_cursor_freep) DbCursor *cur = NULL;
        _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };

        int r = open_store(scope, &cfg, &db);
        if (r < 0)
                return r;
        r = store_runs_query(db, limit, task ? task->name : NULL, &cur);
        while (r >= 0 && (r = db_cursor_next(cur)) > 0) {
                r = store_run_read(cur, &row);
                if (r >= 0) {
                        /* What the daemon's GetLogs does to its rows. */
                        run_row_name_technician(&row, &cfg.settings);
                        run_list_take(l, &row);
                }
        }
        if (r < 0)
                print_error("Cannot read scheduler_logs: %s", r == -EBADMSG ? "malformed timestamp" : db_error(db));
        return r;
}

/* The daemon did not answer on a bus that is there: say so, once per command (a --watch loop
 * too). Without any bus (a plain terminal) the store is the only source: nothing to say. */
static void note_fallback(const sd_bus *bus, const sd_bus_error *e, bool *noted) {
        if (!bus || *noted)
                return;
        *noted = true;
        _cleanup_free_ char *why = xasprintf("gazelle-schedulerd injoignable (%s) : lecture directe de la base.",
                                             e->message ? e->message : e->name ? e->name : "unknown error");
        print_line(stderr, why);
}

static int fetch_runs(BusScope scope, unsigned limit, const Task *task, RunList *l, bool *noted) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        int r = bus_connect(scope, &bus, &e);
        if (r >= 0)
                r = runs_from_bus(bus, limit, task, l, &e);
        if (r >= 0)
                return 0;
        run_list_clear(l);
        note_fallback(bus, &e, noted);
        return runs_from_store(scope, limit, task, l);
}

/* ---- logs: table and JSON --------------------------------------------------------------- */

enum { COL_TIME, COL_TASK, COL_STATUS, COL_DURATION, COL_MESSAGE, COL_TRIGGER, _COL_MAX };

static const char *const column_headers[_COL_MAX] = {
        [COL_TIME] = "Heure",       [COL_TASK] = "Tâche",     [COL_STATUS] = "Statut",
        [COL_DURATION] = "Durée",   [COL_MESSAGE] = "Message", [COL_TRIGGER] = "Déclencheur",
};

/* Who gives up room when the terminal is narrow, in order, and down to how many cells: the
 * message is what people read the journal for, so it keeps room longest. */
static const struct {
        int column;
        size_t min;
} shrink_order[] = {
        { COL_TRIGGER, 16 },
        { COL_TASK, 20 },
        { COL_MESSAGE, 20 },
        { COL_TRIGGER, 10 },
        { COL_TASK, 12 },
        { COL_MESSAGE, 10 },
};

typedef struct LogTable {
        char **cells;             /* (n_rows + 1) × _COL_MAX, row 0 the headers */
        size_t n_rows;
        size_t width[_COL_MAX];
} LogTable;

static void table_clear(LogTable *t) {
        for (size_t i = 0; t->cells && i < (t->n_rows + 1) * _COL_MAX; i++)
                free(t->cells[i]);
        free(t->cells);
        *t = (LogTable) {};
}

static size_t terminal_width(void) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        const char *e = getenv("COLUMNS");
        char *end;
        unsigned long n = e ? strtoul(e, &end, 10) : 0;
        return n > 0 && n < 10000 && !*end ? (size_t) n : TERMINAL_WIDTH_DEFAULT;
}

/* A running task has no duration yet: show how long it has been going. */
static int64_t run_duration(const RunRow *row, usec_t now) {
        if (row->duration_seconds >= 0)
                return row->duration_seconds;
        if (run_status_from_string(row->status) == RUN_RUNNING && row->started_at && now > row->started_at)
                return (int64_t) ((now - row->started_at) / USEC_PER_SEC);
        return -1;
}

static void table_fill_row(char **cells, const RunRow *row, usec_t now) {
        char when[RFC3339_MAX], duration[DURATION_MAX];

        cells[COL_TIME] = xstrdup(row->started_at ? format_local_short(row->started_at, when) : "—");
        cells[COL_TASK] = xstrdup(row->task_label ? row->task_label : strempty(row->task_name));
        cells[COL_STATUS] = xstrdup(status_label(row->status));
        cells[COL_DURATION] = xstrdup(format_duration(run_duration(row, now), duration));
        cells[COL_MESSAGE] = xstrdup(strempty(row->message));
        cells[COL_TRIGGER] = trigger_label(row->triggered_by,
                                           row->triggered_by_name ? row->triggered_by_name : row->triggered_by_user,
                                           row->caller_name);
}

/* Natural widths, then the shrinkable columns give up room until the table fits. */
static void table_layout(LogTable *t, size_t total) {
        size_t sum = strlen(COLUMN_GAP) * (_COL_MAX - 1);

        for (int c = 0; c < _COL_MAX; c++) {
                t->width[c] = 0;
                for (size_t i = 0; i <= t->n_rows; i++) {
                        size_t w = text_width(t->cells[i * _COL_MAX + c]);
                        t->width[c] = w > t->width[c] ? w : t->width[c];
                }
                sum += t->width[c];
        }
        for (size_t i = 0; i < ELEMENTSOF(shrink_order) && sum > total; i++) {
                size_t *w = &t->width[shrink_order[i].column], min = shrink_order[i].min;
                size_t give = *w > min ? *w - min : 0;
                give = give < sum - total ? give : sum - total;
                *w -= give;
                sum -= give;
        }
}

static void table_print_row(const LogTable *t, size_t row, bool bold) {
        if (bold)
                fputs("\033[1m", stdout);
        for (int c = 0; c < _COL_MAX; c++) {
                _cleanup_free_ char *cell = text_fit(t->cells[row * _COL_MAX + c], t->width[c]);
                fputs(cell, stdout);
                if (c == _COL_MAX - 1)
                        break;
                /* Pad to the column width; the last column gets no trailing blanks. */
                for (size_t w = text_width(cell); w < t->width[c]; w++)
                        fputc(' ', stdout);
                fputs(COLUMN_GAP, stdout);
        }
        fputs(bold ? "\033[0m\n" : "\n", stdout);
}

static void print_table(const RunList *l) {
        _cleanup_(table_clear) LogTable t = { .n_rows = l->n };
        usec_t now = now_realtime();

        t.cells = calloc((l->n + 1) * _COL_MAX, sizeof *t.cells);
        if (!t.cells)
                abort();
        for (int c = 0; c < _COL_MAX; c++)
                t.cells[c] = xstrdup(column_headers[c]);
        for (size_t i = 0; i < l->n; i++)
                table_fill_row(t.cells + (i + 1) * _COL_MAX, &l->rows[i], now);
        table_layout(&t, terminal_width());

        bool tty = isatty(STDOUT_FILENO);
        for (size_t i = 0; i <= t.n_rows; i++)
                table_print_row(&t, i, tty && i == 0);
}

static void json_add_string(cJSON *o, const char *key, const char *value) {
        if (value)
                cJSON_AddStringToObject(o, key, value);
        else
                cJSON_AddNullToObject(o, key);
}

static void json_add_time(cJSON *o, const char *key, usec_t t) {
        char buf[RFC3339_MAX];
        json_add_string(o, key, t ? format_local_rfc3339(t, buf) : NULL);
}

/* stats is jsonb in the store: an object for consumers, the raw text if it is not JSON. */
static void json_add_stats(cJSON *o, const char *stats) {
        cJSON *parsed = stats ? cJSON_Parse(stats) : NULL;
        if (parsed)
                cJSON_AddItemToObject(o, "stats", parsed);
        else
                json_add_string(o, "stats", stats);
}

/* Every scheduler_logs column, in table order; NULL columns are null. */
static cJSON *run_json(const RunRow *row) {
        cJSON *o = cJSON_CreateObject();
        json_add_string(o, "id", row->id);
        json_add_string(o, "task_name", row->task_name);
        json_add_string(o, "task_label", row->task_label);
        json_add_time(o, "started_at", row->started_at);
        json_add_time(o, "completed_at", row->completed_at);
        if (row->duration_seconds >= 0)
                cJSON_AddNumberToObject(o, "duration_seconds", (double) row->duration_seconds);
        else
                cJSON_AddNullToObject(o, "duration_seconds");
        json_add_string(o, "status", row->status);
        json_add_string(o, "message", row->message);
        json_add_stats(o, row->stats);
        json_add_string(o, "triggered_by", row->triggered_by);
        json_add_string(o, "triggered_by_user", row->triggered_by_user);
        json_add_string(o, "triggered_by_name", row->triggered_by_name);
        json_add_time(o, "created_at", row->created_at);
        json_add_string(o, "invocation_id", row->invocation_id);
        json_add_string(o, "host", row->host);
        if (row->pid > 0)
                cJSON_AddNumberToObject(o, "pid", (double) row->pid);
        else
                cJSON_AddNullToObject(o, "pid");
        if (row->has_caller_uid)
                cJSON_AddNumberToObject(o, "caller_uid", (double) row->caller_uid);
        else
                cJSON_AddNullToObject(o, "caller_uid");
        json_add_string(o, "caller_name", row->caller_name);
        return o;
}

static int print_json(cJSON *root) {
        _cleanup_(cJSON_freep) char *text = cJSON_Print(root);
        if (!text)
                return -ENOMEM;
        printf("%s\n", text);
        return 0;
}

static int print_runs_json(const RunList *l) {
        _cleanup_(cJSON_Deletep) cJSON *array = cJSON_CreateArray();
        for (size_t i = 0; array && i < l->n; i++)
                cJSON_AddItemToArray(array, run_json(&l->rows[i]));
        return array ? print_json(array) : -ENOMEM;
}

typedef struct LogsOptions {
        unsigned limit;
        const Task *task;
        bool json;
        unsigned watch_sec;       /* 0: print once */
} LogsOptions;

static int logs_once(BusScope scope, const LogsOptions *o, bool *noted) {
        _cleanup_(run_list_clear) RunList l = {};

        int r = fetch_runs(scope, o->limit, o->task, &l, noted);
        if (r < 0)
                return r;
        if (o->json)
                return print_runs_json(&l);
        if (l.n == 0 && o->task)
                printf("Aucune exécution de %s enregistrée.\n", o->task->label);
        else if (l.n == 0)
                printf("Aucune exécution enregistrée.\n");
        else
                print_table(&l);
        return 0;
}

static int logs_watch(BusScope scope, const LogsOptions *o) {
        bool tty = isatty(STDOUT_FILENO), noted = false;

        catch_interrupts();
        while (!interrupted) {
                char now[RFC3339_MAX];
                if (tty)
                        fputs("\033[H\033[2J", stdout); /* home + clear: redraw in place */
                if (!o->json)
                        printf("Journal des tâches — %s (toutes les %u s, Ctrl+C pour quitter)\n\n",
                               format_local_short(now_realtime(), now), o->watch_sec);
                /* A failed refresh is shown and retried: the daemon or the store may come back. */
                (void) logs_once(scope, o, &noted);
                fflush(stdout);
                (void) sleep_until(now_monotonic() + o->watch_sec * USEC_PER_SEC);
        }
        return 0;
}

static int parse_count(const char *s, const char *what, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long n = s ? strtoul(s, &end, 10) : 0;
        if (!s || errno || *end || end == s || s[0] == '-' || n < min || n > max) {
                print_error("Invalid %s '%.32s': expected a whole number from %u to %u.", what, strempty(s),
                        min, max);
                return -EINVAL;
        }
        *ret = (unsigned) n;
        return 0;
}

static const Task *task_arg(const char *name) {
        const Task *t = task_lookup(name);
        if (!t)
                print_error("Unknown task '%.64s'. Valid tasks: %s.", name, task_valid_names());
        return t;
}

#define LOGS_USAGE "Usage: gazelle-scheduler logs [-n N] [--task TASK] [--json] [--watch [SECONDS]]\n"

static int parse_logs(int argc, char **argv, LogsOptions *o) {
        static const struct option options[] = {
                { "lines", required_argument, NULL, 'n' },
                { "task", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "watch", optional_argument, NULL, 'w' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool watch = false;
        int c;

        *o = (LogsOptions) { .limit = LOGS_DEFAULT };
        optind = 0; /* reinitialize getopt: cli_main() parsed with '+' */
        while ((c = getopt_long(argc, argv, "hn:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(LOGS_USAGE, stdout);
                        return 1;
                case 'n':
                        if (parse_count(optarg, "number of lines", 1, LOGS_MAX, &o->limit) < 0)
                                return -EINVAL;
                        break;
                case 't':
                        o->task = task_arg(optarg);
                        if (!o->task)
                                return -EINVAL;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'w':
                        watch = true;
                        o->watch_sec = WATCH_DEFAULT_SEC;
                        if (optarg && parse_count(optarg, "refresh interval", 1, 86400, &o->watch_sec) < 0)
                                return -EINVAL;
                        break;
                default:
                        return -EINVAL;
                }
        /* "--watch 60": getopt cannot take a separate optional argument, so it arrives here. */
        if (watch && optind == argc - 1)
                return parse_count(argv[optind], "refresh interval", 1, 86400, &o->watch_sec);
        if (optind != argc) {
                fputs(LOGS_USAGE, stderr);
                return -EINVAL;
        }
        return 0;
}

int client_logs(BusScope scope, int argc, char **argv) {
        LogsOptions o;

        int r = parse_logs(argc, argv, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (config_valid(scope) < 0)
                return EXIT_USAGE;
        if (o.watch_sec > 0)
                return logs_watch(scope, &o);
        bool noted = false;
        return logs_once(scope, &o, &noted) < 0 ? EXIT_TASK_FAILED : 0;
}

/* ---- start: RunTask, and --wait for TaskFinished ---------------------------------------- */

typedef struct Wait {
        char run_id[RUN_ID_MAX];  /* empty until RunTask replied */
        char *status, *message;   /* set by TaskFinished */
        bool daemon_gone;
} Wait;

static void wait_clear(Wait *w) {
        free(w->status);
        free(w->message);
}

static int on_task_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const char *task, *run_id, *status, *message;

        if (sd_bus_message_read(m, "ssss", &task, &run_id, &status, &message) < 0)
                return 0;
        if (!w->run_id[0] || !streq(run_id, w->run_id) || w->status)
                return 0;
        w->status = xstrdup(status);
        w->message = xstrdup(message);
        return 0;
}

/* The daemon keeps itself alive while it follows a start job; if it goes anyway (crash,
 * restart), no TaskFinished will come and the store has to be asked. */
static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && streq(name, BUS_NAME) &&
            isempty(new_owner))
                w->daemon_gone = true;
        return 0;
}

/* Both matches go in before RunTask: a short task may finish before we could subscribe. */
static int subscribe(sd_bus *bus, Wait *w, sd_bus_slot **finished, sd_bus_slot **owner) {
        int r = sd_bus_match_signal(bus, finished, BUS_NAME, BUS_PATH, BUS_INTERFACE, "TaskFinished", on_task_finished,
                                    w);
        if (r < 0)
                return r;
        return sd_bus_add_match(bus, owner,
                                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
                                on_owner_changed, w);
}

/* -ETIME at the deadline, -EINTR on Ctrl+C, 0 once TaskFinished or the daemon's exit arrived. */
static int wait_on_bus(sd_bus *bus, Wait *w, usec_t deadline) {
        while (!w->status && !w->daemon_gone) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                usec_t now = now_monotonic();
                if (interrupted)
                        return -EINTR;
                if (now >= deadline)
                        return -ETIME;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* After the daemon vanished: the runner still closes its row, so poll it. */
static int wait_in_store(BusScope scope, Wait *w, usec_t deadline) {
        _cleanup_(config_clear) Config cfg = {};
        _cleanup_(db_closep) Db *db = NULL;

        fprintf(stderr, "Plus de nouvelles de gazelle-schedulerd : suivi de l'exécution %s dans la base.\n",
                w->run_id);
        int r = open_store(scope, &cfg, &db);
        while (r >= 0 && !w->status) {
                _cleanup_(run_row_clear) RunRow row = { .duration_seconds = -1 };
                r = store_run_get(db, w->run_id, &row);
                if (r == 0) {
                        fprintf(stderr, "Run %s is not in scheduler_logs.\n", w->run_id);
                        return -ENOENT;
                }
                if (r < 0) {
                        print_error("Cannot read scheduler_logs: %s", db_error(db));
                        return r;
                }
                if (run_status_from_string(row.status) != RUN_RUNNING) {
                        w->status = TAKE_PTR(row.status);
                        w->message = TAKE_PTR(row.message);
                        break;
                }
                if (now_monotonic() >= deadline)
                        return -ETIME;
                if (!sleep_until(MIN(deadline, now_monotonic() + STORE_POLL_USEC)))
                        return -EINTR;
        }
        return r < 0 ? r : 0;
}

static bool status_is_ok(const char *status) {
        RunStatus s = run_status_from_string(status);
        return s == RUN_SUCCESS || s == RUN_WARNING || s == RUN_SKIPPED;
}

static int wait_for_run(BusScope scope, sd_bus *bus, Wait *w, unsigned timeout_sec) {
        usec_t deadline = now_monotonic() + (usec_t) timeout_sec * USEC_PER_SEC;

        catch_interrupts();
        int r = wait_on_bus(bus, w, deadline);
        /* The daemon went away or the bus broke: the store still learns how the run ended. */
        if ((r >= 0 && !w->status) || (r < 0 && r != -EINTR && r != -ETIME))
                r = wait_in_store(scope, w, deadline);
        if (r == -EINTR) {
                fprintf(stderr, "Interrompu : la tâche continue (exécution %s ; voir gazelle-scheduler logs).\n",
                        w->run_id);
                return EXIT_INTERRUPTED;
        }
        if (r == -ETIME) {
                fprintf(stderr, "Toujours en cours après %u s (exécution %s) : gazelle-scheduler logs pour suivre.\n",
                        timeout_sec, w->run_id);
                return EXIT_TASK_FAILED;
        }
        if (r < 0)
                return EXIT_TASK_FAILED; /* wait_in_store() said why */
        _cleanup_free_ char *line = xasprintf("%s : %s", status_label(w->status), strempty(w->message));
        print_line(stdout, line);
        return status_is_ok(w->status) ? 0 : EXIT_TASK_FAILED;
}

typedef struct StartOptions {
        const char *task;
        const char *email;
        bool wait;
        unsigned timeout_sec;
} StartOptions;

#define START_USAGE "Usage: gazelle-scheduler start TASK [--user-email EMAIL] [--wait [--timeout SECONDS]]\n"

static int parse_start(int argc, char **argv, StartOptions *o) {
        static const struct option options[] = {
                { "user-email", required_argument, NULL, 'e' },
                { "wait", no_argument, NULL, 'w' },
                { "timeout", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *o = (StartOptions) { .email = "", .timeout_sec = WAIT_DEFAULT_SEC };
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(START_USAGE, stdout);
                        return 1;
                case 'e':
                        o->email = optarg;
                        break;
                case 'w':
                        o->wait = true;
                        break;
                case 'T':
                        if (parse_count(optarg, "timeout", 1, 7 * 86400, &o->timeout_sec) < 0)
                                return -EINVAL;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind != argc - 1) {
                fputs(START_USAGE, stderr);
                return -EINVAL;
        }
        o->task = argv[optind];
        return 0;
}

int client_start(BusScope scope, int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *finished = NULL, *owner = NULL;
        _cleanup_(wait_clear) Wait w = {};
        StartOptions o;
        const char *run_id;

        int r = parse_start(argc, argv, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        r = bus_connect(scope, &bus, &e);
        if (r >= 0 && o.wait) {
                r = subscribe(bus, &w, &finished, &owner);
                if (r < 0)
                        sd_bus_error_set_errnof(&e, r, "Cannot subscribe to TaskFinished: %s", strerror(-r));
        }
        if (r >= 0)
                r = scheduler_call(bus, "RunTask", &e, &reply, "ss", o.task, o.email);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &run_id);
        if (r < 0) {
                /* The daemon's message already says what and why, in English, on one line. */
                print_line(stderr, e.message ? e.message : strerror(-r));
                return sd_bus_error_has_name(&e, BUS_ERROR_UNKNOWN_TASK) ? EXIT_USAGE : EXIT_TASK_FAILED;
        }
        printf("%s\n", run_id);
        fflush(stdout);
        if (!o.wait)
                return 0;
        snprintf(w.run_id, sizeof w.run_id, "%s", run_id);
        return wait_for_run(scope, bus, &w, o.timeout_sec);
}

/* ---- status ----------------------------------------------------------------------------- */

typedef struct TaskState {
        const Task *task;
        bool next_known;          /* false: the service manager could not be asked */
        usec_t next_run;          /* 0: no next elapse (timer stopped or missing) */
        char *last_status;
        char *last_run_id;
        usec_t last_started_at;   /* 0 when unknown */
        usec_t last_success_at;   /* 0: never succeeded */
        bool running;
        char *name;               /* ListTasks' key, to find the task */
} TaskState;

static void task_states_clear(TaskState (*states)[_TASK_MAX]) {
        for (int i = 0; i < _TASK_MAX; i++) {
                free((*states)[i].last_status);
                free((*states)[i].last_run_id);
                free((*states)[i].name);
                (*states)[i] = (TaskState) {};
        }
}

static void task_state_set(const char *key, char type, const DictValue *v, void *userdata) {
        TaskState *s = userdata;

        if (type == 'b' && streq(key, "running"))
                s->running = v->b;
        else if (type != 's')
                return;
        else if (streq(key, "name"))
                set_string(&s->name, v->s);
        else if (streq(key, "next_run"))
                set_time(&s->next_run, v->s);
        else if (streq(key, "last_status"))
                set_string(&s->last_status, v->s);
        else if (streq(key, "last_run_id"))
                set_string(&s->last_run_id, v->s);
        else if (streq(key, "last_success_at"))
                set_time(&s->last_success_at, v->s);
        else if (streq(key, "last_started_at"))
                set_time(&s->last_started_at, v->s);
}

static int states_from_bus(sd_bus *bus, TaskState *states, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        int r = scheduler_call(bus, "ListTasks", e, &reply, "");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        while (r >= 0) {
                TaskState s = {};
                r = bus_read_dict(reply, task_state_set, &s);
                const Task *t = r > 0 ? task_lookup(s.name) : NULL;
                free(s.name);
                s.name = NULL;
                if (!t) {
                        free(s.last_status);
                        free(s.last_run_id);
                        if (r <= 0)
                                break;
                        continue;
                }
                /* The daemon asked the manager: an absent next_run means the timer has none. */
                s.task = t;
                s.next_known = true;
                free(states[t->id].last_status);
                free(states[t->id].last_run_id);
                states[t->id] = s;
        }
        if (r < 0) {
                if (!sd_bus_error_is_set(e))
                        sd_bus_error_set_errnof(e, r, "Invalid ListTasks reply: %s", strerror(-r));
                return r;
        }
        return 0;
}

/* What ListTasks would say, without the daemon: the same store history, the same idea of busy. */
static int state_from_store(const Config *cfg, Db *db, sd_bus *manager, TaskState *s) {
        _cleanup_(task_history_clear) TaskHistory h = {};

        int r = store_task_history(db, s->task->name, &h);
        if (r < 0)
                return r;
        s->last_status = TAKE_PTR(h.last.status);
        s->last_run_id = TAKE_PTR(h.last.id);
        s->last_started_at = h.last.started_at;
        s->last_success_at = h.last_ok.started_at;
        s->running = task_busy(cfg, manager, s->task);
        s->next_known = manager && manager_timer_next_elapse(manager, s->task->timer, &s->next_run) >= 0;
        return 0;
}

static int states_from_store(BusScope scope, TaskState *states) {
        _cleanup_(config_clear) Config cfg = {};
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *manager = NULL;

        int r = open_store(scope, &cfg, &db);
        if (r < 0)
                return r;
        /* Without a bus the next runs are unknown; the rest still answers the question. */
        if (manager_bus_open(scope, &manager) < 0)
                manager = NULL;
        for (int i = 0; i < _TASK_MAX; i++) {
                states[i].task = task_get((TaskId) i);
                r = state_from_store(&cfg, db, manager, &states[i]);
                if (r < 0) {
                        print_error("Cannot read scheduler_logs: %s", db_error(db));
                        return r;
                }
        }
        return 0;
}

static int fetch_states(BusScope scope, TaskState *states) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        int r = bus_connect(scope, &bus, &e);
        if (r >= 0)
                r = states_from_bus(bus, states, &e);
        for (int i = 0; r >= 0 && i < _TASK_MAX; i++)
                if (!states[i].task)
                        r = sd_bus_error_setf(&e, SD_BUS_ERROR_INCONSISTENT_MESSAGE, "ListTasks did not list %s",
                                              task_get((TaskId) i)->name);
        if (r >= 0)
                return 0;
        task_states_clear((TaskState(*)[_TASK_MAX]) states);
        bool noted = false;
        note_fallback(bus, &e, &noted);
        return states_from_store(scope, states);
}

static bool state_stale(const TaskState *s, usec_t now) {
        return !s->last_success_at || (now > s->last_success_at && now - s->last_success_at > STALE_AFTER_USEC);
}

/* "2026-11-24 03:00 (il y a 3 h 12 min)" or "(dans …)". */
static char *format_when(usec_t t, usec_t now) {
        char when[RFC3339_MAX], age[AGE_MAX];
        return xasprintf("%s (%s %s)", format_local_short(t, when), t <= now ? "il y a" : "dans",
                         format_age(t <= now ? now - t : t - now, age));
}

static void print_state(const TaskState *s, usec_t now) {
        _cleanup_free_ char *next = NULL, *last = NULL, *ok = NULL;

        next = !s->next_known ? xstrdup("inconnue (gestionnaire systemd injoignable)")
               : s->next_run  ? format_when(s->next_run, now)
                              : xasprintf("aucune (%s n'est pas actif)", s->task->timer);
        if (!s->last_status)
                last = xstrdup("aucune");
        else {
                char when[RFC3339_MAX];
                last = xasprintf("%s%s%s", s->last_started_at ? format_local_short(s->last_started_at, when) : "",
                                 s->last_started_at ? " — " : "", status_label(s->running ? "running" : s->last_status));
        }
        ok = s->last_success_at ? format_when(s->last_success_at, now) : xstrdup("jamais");

        printf("%s (%s) — %s\n", s->task->label, s->task->name, s->task->schedule);
        printf("    Prochaine exécution : %s\n", next);
        printf("    Dernière exécution  : %s\n", last);
        printf("    Dernier succès      : %s%s\n\n", ok,
               !state_stale(s, now) ? "" : s->last_success_at ? "  ⚠️ plus de 26 h" : "  ⚠️");
}

static cJSON *state_json(const TaskState *s, usec_t now) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->task->name);
        cJSON_AddStringToObject(o, "label", s->task->label);
        cJSON_AddStringToObject(o, "unit", s->task->unit);
        cJSON_AddStringToObject(o, "timer", s->task->timer);
        cJSON_AddStringToObject(o, "schedule", s->task->schedule);
        json_add_time(o, "next_run", s->next_run);
        json_add_string(o, "last_status", s->last_status);
        json_add_string(o, "last_run_id", s->last_run_id);
        json_add_time(o, "last_started_at", s->last_started_at);
        json_add_time(o, "last_success_at", s->last_success_at);
        if (s->last_success_at && now >= s->last_success_at)
                cJSON_AddNumberToObject(o, "last_success_age_seconds",
                                        (double) ((now - s->last_success_at) / USEC_PER_SEC));
        else
                cJSON_AddNullToObject(o, "last_success_age_seconds");
        cJSON_AddBoolToObject(o, "running", s->running);
        cJSON_AddBoolToObject(o, "stale", state_stale(s, now));
        return o;
}

/* One line per task that needs a look; returns how many. */
static unsigned report_stale(FILE *f, const TaskState *states, usec_t now) {
        unsigned n = 0;
        for (int i = 0; i < _TASK_MAX; i++) {
                const TaskState *s = &states[i];
                char age[AGE_MAX];
                if (!state_stale(s, now))
                        continue;
                if (s->last_success_at)
                        fprintf(f, "⚠️ %s (%s) : dernier succès il y a %s, plus de 26 h.\n", s->task->label,
                                s->task->name, format_age(now - s->last_success_at, age));
                else
                        fprintf(f, "⚠️ %s (%s) : aucun succès enregistré.\n", s->task->label, s->task->name);
                n++;
        }
        return n;
}

#define STATUS_USAGE "Usage: gazelle-scheduler status [--json]\n"

int client_status(BusScope scope, int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(task_states_clear) TaskState states[_TASK_MAX] = {};
        bool json = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(STATUS_USAGE, stdout);
                        return 0;
                case 'j':
                        json = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind != argc) {
                fputs(STATUS_USAGE, stderr);
                return EXIT_USAGE;
        }
        if (config_valid(scope) < 0)
                return EXIT_USAGE;
        /* Nothing known is not "all fine": monitoring must page on it. */
        if (fetch_states(scope, states) < 0)
                return EXIT_TASK_FAILED;

        usec_t now = now_realtime();
        if (json) {
                _cleanup_(cJSON_Deletep) cJSON *array = cJSON_CreateArray();
                for (int i = 0; array && i < _TASK_MAX; i++)
                        cJSON_AddItemToArray(array, state_json(&states[i], now));
                if (!array || print_json(array) < 0)
                        return EXIT_TASK_FAILED;
                /* stdout stays pure JSON; people and logs still get the reason. */
                return report_stale(stderr, states, now) > 0 ? EXIT_TASK_FAILED : 0;
        }
        for (int i = 0; i < _TASK_MAX; i++)
                print_state(&states[i], now);
        return report_stale(stdout, states, now) > 0 ? EXIT_TASK_FAILED : 0;
}
