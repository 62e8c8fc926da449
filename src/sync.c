/* SPDX-License-Identifier: MIT */
/* sync.c — Sync Gazelle Totale: the paginations of the four fetched entities run concurrently
 * (gazelle.h bounds them); each page is mapped to rows and written in one transaction by the
 * engine's writer (sync-store.h: ids seen marked, only rows whose API-owned columns differ
 * rewritten), so counts of inserted and updated rows are exact and memory holds one page per
 * entity. Completed passes then infer deletions and move the marks. */
#include "sync.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "gazelle.h"
#include "store.h"
#include "sync-store.h"
#include "task-lock.h"

#define TIMELINE_OVERLAP_USEC (30 * 24 * 3600 * USEC_PER_SEC)
#define APPOINTMENTS_DAYS_BACK 60
#define APPOINTMENTS_DAYS_AHEAD 90
#define PROGRESS_EVERY_PAGES 25
#define REJECT_REASONS_MAX 5
#define ERRORS_MAX 4
/* Pages parsed but not yet written: the backpressure that keeps memory flat. */
#define QUEUE_MAX 8
/* When the writer falls behind, up to this many queued pages share one commit (each page stays
 * whole: a transaction never holds part of a page); when it keeps up, one page per commit. */
#define GROUP_MAX 16

/* A text value that is never NULL (arrays: DBV_TEXT_OR_NULL would test their address). */
#define DBV_T(x) ((DbValue) { .type = DBV_TEXT, .s = (x) })


typedef enum Entity {
        E_CLIENTS,
        E_CONTACTS,
        E_PIANOS,
        E_TIMELINE,
        E_APPOINTMENTS,
        E_USERS,
        _E_MAX,
} Entity;

typedef struct EntityTable {
        const char *name;       /* SQL table */
        const char *key;        /* stats key and sync_state entity */
        const char *label;      /* French, for messages */
        const char *const *cols; /* API-owned columns; cols[0] is external_id */
        size_t n_cols;
        bool has_deleted_at;
} EntityTable;



#define COLS(...) .cols = (const char *const[]) { __VA_ARGS__ }, .n_cols = ELEMENTSOF(((const char *const[]) { __VA_ARGS__ }))

static const EntityTable tables[_E_MAX] = {
        [E_CLIENTS] = { "gazelle_clients", "clients", "clients",
                COLS("external_id", "company_name", "status", "tags", "personal_notes", "preference_notes",
                     "client_type", "preferred_technician_id", "locale", "created_at", "updated_at"),
                .has_deleted_at = true },
        [E_CONTACTS] = { "gazelle_contacts", "contacts", "contacts",
                COLS("external_id", "client_external_id", "is_default", "first_name", "last_name", "title",
                     "wants_email", "wants_phone", "wants_text", "email", "phone", "street1", "street2",
                     "municipality", "postal_code", "region"),
                .has_deleted_at = true },
        [E_PIANOS] = { "gazelle_pianos", "pianos", "pianos",
                COLS("external_id", "client_external_id", "make", "model", "serial_number", "type", "year",
                     "location", "notes", "status", "size", "case_color", "case_finish", "service_interval_months",
                     "calculated_last_service", "calculated_next_service", "dampp_chaser_installed",
                     "dampp_chaser_humidistat_model", "dampp_chaser_mfg_date", "created_at", "updated_at"),
                .has_deleted_at = true },
        [E_TIMELINE] = { "gazelle_timeline_entries", "timeline_entries", "entrées de timeline",
                COLS("external_id", "occurred_at", "type", "summary", "comment", "client_external_id",
                     "piano_external_id", "invoice_external_id", "estimate_external_id", "user_external_id"),
                .has_deleted_at = true },
        [E_APPOINTMENTS] = { "gazelle_appointments", "appointments", "rendez-vous",
                COLS("external_id", "title", "start_at", "duration_minutes", "is_all_day", "notes", "type", "status",
                     "confirmed_by_client", "confirmed_at", "source", "travel_mode", "created_at", "updated_at",
                     "client_external_id", "user_external_id", "created_by_external_id", "piano_external_ids"),
                .has_deleted_at = true },
        [E_USERS] = { "gazelle_users", "users", "techniciens",
                COLS("external_id", "first_name", "last_name") },
};

typedef struct EntityStats {
        unsigned fetched, inserted, updated, deleted, rejected;
} EntityStats;

/* One page's rows of one table: values point into the page's JSON or into owned strings. */
typedef struct RowSet {
        const EntityTable *t;
        DbValue *vals;
        size_t n_rows, cap_rows;
        char **owned;
        size_t n_owned, cap_owned;
} RowSet;

typedef struct Sync Sync;

typedef struct Stream {
        Sync *s;
        Entity entity;
        const char *query, *field;
        bool started, complete;
        bool full_pass;            /* deletions may be inferred when complete */
        unsigned pages;
        char hwm[ISO_UTC_MAX];     /* timeline: newest occurredAt seen */
        LocalDate from, to;        /* appointments window: the dates asked for, inclusive */
        char win_start[ISO_UTC_MAX], win_end[ISO_UTC_MAX]; /* where absences may be inferred */
        bool absences_known;       /* finished: every event of [win_start, win_end) has synced_at now */
        RowSet main, aux;          /* aux: contacts of clients, users of entries and events */
        bool ended;                /* the pagination ran to its last page (main thread) */
        bool write_failed;         /* a page could not be written (under Sync.lock) */
} Stream;

typedef struct PageItem {
        Stream *st;
        cJSON *nodes;
} PageItem;

/* Two threads: the main one drives the HTTP transfers (gazelle_run) and queues each page's
 * records; the writer maps them to rows and writes them on its own connection, so a page is
 * written while the next one is being fetched. Shared: the queue, errors, write_failed (lock). */
struct Sync {
        RunContext *ctx;
        Db *db;                    /* main thread: tokens, the sync lease, the final steps */
        Db *wdb;                   /* writer thread: the pages */
        pthread_mutex_t lock;
        pthread_cond_t changed;
        PageItem queue[QUEUE_MAX];
        size_t q_head, q_len;
        bool q_closed;
        pthread_t writer;
        bool writer_started;
        GazelleClient *g;
        bool dry_run;
        unsigned delete_max_percent;
        char now[ISO_UTC_MAX];     /* synced_at of every row this run writes */
        EntityStats stats[_E_MAX];
        unsigned pages;
        cJSON *reasons;            /* first rejection reasons */
        cJSON *errors;             /* fetch and write failures, French */
        cJSON *warnings;           /* deletions held back */
        int first_error;
        TaskLeaseKeeper *sync_lease; /* rv_alerts' appointments step: sync_gazelle's lease, held */
        int sync_lock_fd;            /* ... with sync_gazelle's lock on this host, or -1 */
        char *pg_sql[_E_MAX];      /* PostgreSQL statements, built once per run */
        SyncSqliteStmts stmts[_E_MAX]; /* SQLite statements, prepared once per run */
        bool in_tx;                /* writer: a group of pages is open */
        unsigned tx_pages;
        bool tx_streams[4];        /* streams with pages in the open group */
        EntityStats pending[_E_MAX]; /* their counts, added to stats at commit */
        Stream streams[4];
        size_t n_streams;
};

static const char *const QUERY_CLIENTS =
        "query Clients($first: Int!, $after: String) { allClients(first: $first, after: $after) { nodes { "
        "id companyName status tags personalNotes preferenceNotes clientType preferredTechnicianId createdAt updatedAt "
        "defaultClientLocalization { locale } defaultContact { id firstName lastName title wantsEmail wantsPhone "
        "wantsText defaultEmail { email } defaultPhone { phoneNumber } defaultLocation { street1 street2 "
        "municipality postalCode region } } } pageInfo { hasNextPage endCursor } } }";
static const char *const QUERY_PIANOS =
        "query Pianos($first: Int!, $after: String) { allPianos(first: $first, after: $after) { nodes { "
        "id client { id } make model serialNumber type year location notes status size caseColor caseFinish "
        "serviceIntervalMonths calculatedLastService calculatedNextService damppChaserInstalled "
        "damppChaserHumidistatModel damppChaserMfgDate createdAt updatedAt } pageInfo { hasNextPage endCursor } } }";
static const char *const QUERY_TIMELINE =
        "query Timeline($first: Int!, $after: String, $occurredAtGet: CoreDateTime) { allTimelineEntries(first: "
        "$first, after: $after, occurredAtGet: $occurredAtGet) { nodes { id occurredAt type summary comment "
        "client { id } piano { id } invoice { id } estimate { id } user { id firstName lastName } } "
        "pageInfo { hasNextPage endCursor } } }";
static const char *const QUERY_EVENTS =
        "query Events($first: Int!, $after: String, $filters: PrivateAllEventsFilter) { allEventsBatched(first: "
        "$first, after: $after, filters: $filters, sortBy: [START_ASC]) { nodes { id title start duration isAllDay "
        "notes type status confirmedByClient confirmedAt source travelMode createdAt updatedAt client { id } "
        "user { id firstName lastName } createdBy { id } allEventPianos(first: 10) { nodes { piano { id } } } } "
        "pageInfo { hasNextPage endCursor } } }";

/* ---- rows ---- */

static void rowset_reset(RowSet *rs) {
        for (size_t i = 0; i < rs->n_owned; i++)
                free(rs->owned[i]);
        rs->n_owned = 0;
        rs->n_rows = 0;
}

static void rowset_done(RowSet *rs) {
        rowset_reset(rs);
        free(rs->vals);
        free(rs->owned);
        *rs = (RowSet) {};
}

static const char *rowset_own(RowSet *rs, char *s) {
        if (rs->n_owned == rs->cap_owned) {
                rs->cap_owned = rs->cap_owned ? rs->cap_owned * 2 : 256;
                rs->owned = realloc(rs->owned, rs->cap_owned * sizeof *rs->owned);
                if (!rs->owned)
                        abort();
        }
        return rs->owned[rs->n_owned++] = s;
}

/* A row for id: the existing one when the page repeats an id (a multi-row upsert may touch a
 * row only once), else a new one whose values all keep what the store has (SYNC_KEEP). */
static DbValue *rowset_row(RowSet *rs, const char *id, bool *ret_existed) {
        size_t k = rs->t->n_cols;
        for (size_t i = 0; i < rs->n_rows; i++)
                if (streq(rs->vals[i * k].s, id)) {
                        *ret_existed = true;
                        return rs->vals + i * k;
                }
        if (rs->n_rows == rs->cap_rows) {
                rs->cap_rows = rs->cap_rows ? rs->cap_rows * 2 : GAZELLE_PAGE_SIZE;
                rs->vals = realloc(rs->vals, rs->cap_rows * k * sizeof *rs->vals);
                if (!rs->vals)
                        abort();
        }
        DbValue *row = rs->vals + rs->n_rows++ * k;
        for (size_t c = 0; c < k; c++)
                row[c] = SYNC_KEEP;
        row[0] = (DbValue) { .type = DBV_TEXT, .s = id };
        *ret_existed = false;
        return row;
}

static cJSON *jget(const cJSON *o, const char *key) {
        return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* What Gazelle says of o.key. NULL: nothing, because o or the key was left out (a partial
 * record or nested object): the stored value stays. A JSON null (also when o itself is null):
 * "none", the stored value is cleared. */
static const cJSON *jfield(const cJSON *o, const char *key) {
        static const cJSON none = { .type = cJSON_NULL };
        if (!o)
                return NULL;
        if (!cJSON_IsObject(o))
                return &none;
        return jget(o, key);
}

/* Strings as they are; numbers as text (a serial number may come as one). */
static DbValue jtext(RowSet *rs, const cJSON *o, const char *key) {
        const cJSON *v = jfield(o, key);
        if (!v)
                return SYNC_KEEP;
        if (cJSON_IsString(v))
                return DBV_TEXT_OR_NULL(v->valuestring);
        if (cJSON_IsNumber(v))
                return DBV_TEXT_OR_NULL(rowset_own(rs, xasprintf("%.15g", v->valuedouble)));
        return DB_NULL;
}

/* o.key.sub as text, where key is part of the record: defaultEmail { email }. */
static DbValue jtext_nested(RowSet *rs, const cJSON *o, const char *key, const char *sub) {
        const cJSON *parent = jfield(o, key);
        return parent ? jtext(rs, parent, sub) : SYNC_KEEP;
}

/* A field of a reference to another record (user { id firstName }, client { id }): a null
 * there may only be a field this account does not see, so it keeps the stored value like an
 * absent one. */
static DbValue jref_field(RowSet *rs, const cJSON *ref, const char *sub) {
        DbValue v = jtext(rs, ref, sub);
        return v.type == DBV_NULL ? SYNC_KEEP : v;
}

/* o.key.sub through a reference; a null reference (client: null) is the link removed. */
static DbValue jref(RowSet *rs, const cJSON *o, const char *key, const char *sub) {
        const cJSON *ref = jfield(o, key);
        if (!ref)
                return SYNC_KEEP;
        if (!cJSON_IsObject(ref))
                return DB_NULL;
        return jref_field(rs, ref, sub);
}

static DbValue jint(const cJSON *o, const char *key) {
        const cJSON *v = jfield(o, key);
        if (!v)
                return SYNC_KEEP;
        return cJSON_IsNumber(v) ? DBV_I((int64_t) v->valuedouble) : DB_NULL;
}

static DbValue jbool(const cJSON *o, const char *key) {
        const cJSON *v = jfield(o, key);
        if (!v)
                return SYNC_KEEP;
        return cJSON_IsBool(v) ? DBV_B(cJSON_IsTrue(v)) : DB_NULL;
}

/* Instants in the store's one format (fixed width, sorts as text). One that cannot be read says
 * nothing either: an appointment must not lose its start to a garbled answer. */
static DbValue jtime(RowSet *rs, const cJSON *o, const char *key) {
        const cJSON *v = jfield(o, key);
        usec_t t;
        if (!v)
                return SYNC_KEEP;
        if (cJSON_IsNull(v))
                return DB_NULL;
        if (!cJSON_IsString(v) || parse_iso_utc(v->valuestring, &t) < 0)
                return SYNC_KEEP;
        char buf[ISO_UTC_MAX];
        return DBV_TEXT_OR_NULL(rowset_own(rs, xstrdup(format_iso_utc(t, buf))));
}

static DbValue jjson(RowSet *rs, const cJSON *o, const char *key) {
        const cJSON *v = jfield(o, key);
        if (!v)
                return SYNC_KEEP;
        if (cJSON_IsNull(v))
                return DB_NULL;
        return DBV_TEXT_OR_NULL(rowset_own(rs, cJSON_PrintUnformatted(v)));
}

static const char *node_id(const cJSON *node) {
        cJSON *id = jget(node, "id");
        return cJSON_IsString(id) && !isempty(id->valuestring) ? id->valuestring : NULL;
}

static void reject(Sync *s, Entity e, unsigned page, size_t index, const char *why) {
        s->stats[e].rejected++;
        if (cJSON_GetArraySize(s->reasons) < REJECT_REASONS_MAX) {
                _cleanup_free_ char *m = xasprintf("%s : %s (page %u, position %zu)", tables[e].label, why, page,
                                                   index + 1);
                cJSON_AddItemToArray(s->reasons, cJSON_CreateString(m));
        }
}

/* How one API field becomes one column value: the mappers below are tables of these, in
 * column order. */
typedef enum FieldKind { F_TEXT, F_INT, F_BOOL, F_TIME, F_JSON, F_NESTED, F_REF } FieldKind;

typedef struct Field {
        FieldKind kind;
        const char *key;
        const char *sub; /* F_NESTED: key.sub (part of the record); F_REF: key { sub } (another record) */
} Field;

#define TEXT(k) { F_TEXT, k, NULL }
#define INT(k) { F_INT, k, NULL }
#define BOOL(k) { F_BOOL, k, NULL }
#define TIME(k) { F_TIME, k, NULL }
#define JSON(k) { F_JSON, k, NULL }
#define NESTED(k, s) { F_NESTED, k, s }
#define REF_ID(k) { F_REF, k, "id" }

static DbValue field_value(RowSet *rs, const cJSON *o, const Field *f) {
        switch (f->kind) {
        case F_TEXT:
                return jtext(rs, o, f->key);
        case F_INT:
                return jint(o, f->key);
        case F_BOOL:
                return jbool(o, f->key);
        case F_TIME:
                return jtime(rs, o, f->key);
        case F_JSON:
                return jjson(rs, o, f->key);
        case F_NESTED:
                return jtext_nested(rs, o, f->key, f->sub);
        case F_REF:
                return jref(rs, o, f->key, f->sub);
        }
        abort();
}

/* row[first], row[first + 1], … from the fields of o, in order. */
static void map_fields(RowSet *rs, DbValue *row, size_t first, const cJSON *o, const Field *fields, size_t n) {
        for (size_t i = 0; i < n; i++)
                row[first + i] = field_value(rs, o, &fields[i]);
}

static const Field client_fields[] = {
        TEXT("companyName"), TEXT("status"), JSON("tags"), TEXT("personalNotes"), TEXT("preferenceNotes"),
        TEXT("clientType"), TEXT("preferredTechnicianId"), NESTED("defaultClientLocalization", "locale"),
        TIME("createdAt"), TIME("updatedAt"),
};
/* The default contact, after its client id and "is default". */
static const Field contact_fields[] = {
        TEXT("firstName"), TEXT("lastName"), TEXT("title"), BOOL("wantsEmail"), BOOL("wantsPhone"),
        BOOL("wantsText"), NESTED("defaultEmail", "email"), NESTED("defaultPhone", "phoneNumber"),
};
static const Field location_fields[] = {
        TEXT("street1"), TEXT("street2"), TEXT("municipality"), TEXT("postalCode"), TEXT("region"),
};
static const Field piano_fields[] = {
        REF_ID("client"), TEXT("make"), TEXT("model"), TEXT("serialNumber"), TEXT("type"), INT("year"),
        TEXT("location"), TEXT("notes"), TEXT("status"), TEXT("size"), TEXT("caseColor"), TEXT("caseFinish"),
        INT("serviceIntervalMonths"), TEXT("calculatedLastService"), TEXT("calculatedNextService"),
        BOOL("damppChaserInstalled"), TEXT("damppChaserHumidistatModel"), TEXT("damppChaserMfgDate"),
        TIME("createdAt"), TIME("updatedAt"),
};
static const Field timeline_fields[] = {
        TIME("occurredAt"), TEXT("type"), TEXT("summary"), TEXT("comment"), REF_ID("client"), REF_ID("piano"),
        REF_ID("invoice"), REF_ID("estimate"), REF_ID("user"),
};
static const Field event_fields[] = {
        TEXT("title"), TIME("start"), INT("duration"), BOOL("isAllDay"), TEXT("notes"), TEXT("type"),
        TEXT("status"), BOOL("confirmedByClient"), TIME("confirmedAt"), TEXT("source"), TEXT("travelMode"),
        TIME("createdAt"), TIME("updatedAt"), REF_ID("client"), REF_ID("user"), REF_ID("createdBy"),
};

/* Technicians are only ever seen through references: whatever one of them leaves out or null
 * keeps what an earlier one (in this page or in the store) said. */
static void add_user(RowSet *users, const cJSON *user) {
        const char *id = node_id(user);
        bool existed;
        if (!id)
                return;
        DbValue *row = rowset_row(users, id, &existed);
        DbValue first = jref_field(users, user, "firstName"), last = jref_field(users, user, "lastName");
        if (!sync_value_keeps(&first))
                row[1] = first;
        if (!sync_value_keeps(&last))
                row[2] = last;
}

static void map_client(Stream *st, const cJSON *n, const char *id) {
        bool existed;
        DbValue *row = rowset_row(&st->main, id, &existed);
        RowSet *rs = &st->main;
        map_fields(rs, row, 1, n, client_fields, ELEMENTSOF(client_fields));

        const cJSON *c = jget(n, "defaultContact");
        const char *cid = node_id(c);
        if (!cid)
                return; /* no default contact: nothing to store, not an error */
        rs = &st->aux;
        row = rowset_row(rs, cid, &existed);
        row[1] = DBV_TEXT_OR_NULL(id);
        row[2] = DBV_B(true);
        map_fields(rs, row, 3, c, contact_fields, ELEMENTSOF(contact_fields));
        map_fields(rs, row, 3 + ELEMENTSOF(contact_fields), jget(c, "defaultLocation"), location_fields,
                   ELEMENTSOF(location_fields));
}

static void map_piano(Stream *st, const cJSON *n, const char *id) {
        bool existed;
        RowSet *rs = &st->main;
        map_fields(rs, rowset_row(rs, id, &existed), 1, n, piano_fields, ELEMENTSOF(piano_fields));
}

static void map_timeline(Stream *st, const cJSON *n, const char *id) {
        bool existed;
        RowSet *rs = &st->main;
        DbValue *row = rowset_row(rs, id, &existed);
        map_fields(rs, row, 1, n, timeline_fields, ELEMENTSOF(timeline_fields));
        if (row[1].type == DBV_TEXT && strcmp(row[1].s, st->hwm) > 0)
                snprintf(st->hwm, sizeof st->hwm, "%s", row[1].s);
        add_user(&st->aux, jget(n, "user"));
}

static void map_event(Stream *st, const cJSON *n, const char *id) {
        bool existed;
        RowSet *rs = &st->main;
        DbValue *row = rowset_row(rs, id, &existed);
        map_fields(rs, row, 1, n, event_fields, ELEMENTSOF(event_fields));
        /* The pianos of the event as a JSON array of ids: ["ins_…", …]; none said, none changed. */
        const cJSON *pianos = jfield(jfield(n, "allEventPianos"), "nodes");
        if (pianos) {
                _cleanup_(cJSON_Deletep) cJSON *ids = cJSON_CreateArray();
                const cJSON *p;
                cJSON_ArrayForEach(p, pianos) {
                        const char *pid = node_id(jget(p, "piano"));
                        if (pid)
                                cJSON_AddItemToArray(ids, cJSON_CreateString(pid));
                }
                row[17] = DBV_TEXT_OR_NULL(rowset_own(rs, cJSON_PrintUnformatted(ids)));
        }
        add_user(&st->aux, jget(n, "user"));
}

/* ---- writing ---- */

static void count_written(EntityStats *es, size_t n, unsigned existed, unsigned changed) {
        unsigned inserted = n > existed ? (unsigned) n - existed : 0;
        es->inserted += inserted;
        es->updated += changed > inserted ? changed - inserted : 0;
}

/* Writes a RowSet through the engine's writer (sync-store.h). */
static int write_rows(Sync *s, RowSet *rs, EntityStats *es) {
        size_t n = rs->n_rows;
        size_t e = (size_t) (rs->t - tables);
        const SyncTable t = { rs->t->name, rs->t->cols, rs->t->n_cols, rs->t->has_deleted_at };
        unsigned existed = 0, changed = 0;
        int r;

        if (n == 0)
                return 0;
        if (db_backend(s->wdb) == DB_POSTGRESQL)
                r = sync_pg_write(s->wdb, &t, &s->pg_sql[e], rs->vals, n, s->now, &existed, &changed);
        else
                r = sync_sqlite_write(s->wdb, &t, &s->stmts[e], rs->vals, n, s->now, &existed, &changed);
        if (r < 0)
                return r;
        count_written(es, n, existed, changed);
        return 0;
}

/* ---- pages ---- */

static void progress(Sync *s) {
        log_progress(&s->ctx->log, "Sync Gazelle : %u pages — clients %u, pianos %u, entrées %u, rendez-vous %u",
                     s->pages, s->stats[E_CLIENTS].fetched, s->stats[E_PIANOS].fetched, s->stats[E_TIMELINE].fetched,
                     s->stats[E_APPOINTMENTS].fetched);
}

/* Writer thread: one page, one transaction. */
static int write_page(Sync *s, Stream *st, const cJSON *nodes, char *error, size_t error_size) {
        Entity aux = st->entity == E_CLIENTS ? E_CONTACTS : E_USERS;
        size_t i = 0;
        const cJSON *n;

        st->pages++;
        s->pages++;
        rowset_reset(&st->main);
        rowset_reset(&st->aux);
        cJSON_ArrayForEach(n, nodes) {
                const char *id = node_id(n);
                if (!cJSON_IsObject(n) || !id) {
                        reject(s, st->entity, st->pages, i++, cJSON_IsObject(n) ? "enregistrement sans id" :
                                                                                 "enregistrement qui n'est pas un objet");
                        continue;
                }
                i++;
                s->stats[st->entity].fetched++;
                switch (st->entity) {
                case E_CLIENTS:
                        map_client(st, n, id);
                        break;
                case E_PIANOS:
                        map_piano(st, n, id);
                        break;
                case E_TIMELINE:
                        map_timeline(st, n, id);
                        break;
                case E_APPOINTMENTS:
                        map_event(st, n, id);
                        break;
                default:
                        abort();
                }
        }
        if (st->entity == E_CLIENTS)
                s->stats[E_CONTACTS].fetched += (unsigned) st->aux.n_rows;

        if (!s->dry_run) {
                int r = 0;
                if (!s->in_tx) {
                        r = db_begin(s->wdb);
                        s->in_tx = r >= 0;
                }
                if (r >= 0)
                        r = write_rows(s, &st->main, &s->pending[st->entity]);
                if (r >= 0)
                        r = write_rows(s, &st->aux, &s->pending[aux]);
                if (r < 0) {
                        snprintf(error, error_size, "écriture d'une page de %s dans la base : %s", tables[st->entity].label,
                                 db_error(s->wdb));
                        return r;
                }
                s->tx_pages++;
                s->tx_streams[st - s->streams] = true;
        }
        if (st->entity != E_CLIENTS)
                s->stats[E_USERS].fetched += (unsigned) st->aux.n_rows; /* technicians named, per page */
        if (s->pages % PROGRESS_EVERY_PAGES == 0)
                progress(s);
        return 0;
}

static void add_error(Sync *s, int r, const char *fmt, ...) _printf_(3, 4);

/* Writer: a failed group is rolled back whole; every stream with a page in it has lost pages
 * and cannot complete. */
static void group_failed(Sync *s, int r, const char *error) {
        (void) db_rollback(s->wdb);
        add_error(s, r, "%s", error);
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_streams; i++)
                if (s->tx_streams[i])
                        s->streams[i].write_failed = true;
        pthread_mutex_unlock(&s->lock);
        s->in_tx = false;
        s->tx_pages = 0;
        memset(s->tx_streams, 0, sizeof s->tx_streams);
        memset(s->pending, 0, sizeof s->pending);
}

static void group_commit(Sync *s) {
        if (!s->in_tx)
                return;
        int r = db_commit(s->wdb);
        if (r < 0) {
                char error[GAZELLE_ERROR_MAX];
                snprintf(error, sizeof error, "validation d'un groupe de pages dans la base : %s", db_error(s->wdb));
                group_failed(s, r, error);
                return;
        }
        /* Counted only once committed: the stats say what the store holds. */
        for (size_t e = 0; e < _E_MAX; e++) {
                s->stats[e].inserted += s->pending[e].inserted;
                s->stats[e].updated += s->pending[e].updated;
        }
        s->in_tx = false;
        s->tx_pages = 0;
        memset(s->tx_streams, 0, sizeof s->tx_streams);
        memset(s->pending, 0, sizeof s->pending);
}

static void *writer_main(void *userdata) {
        Sync *s = userdata;
        char error[GAZELLE_ERROR_MAX];

        for (;;) {
                pthread_mutex_lock(&s->lock);
                while (s->q_len == 0 && !s->q_closed)
                        pthread_cond_wait(&s->changed, &s->lock);
                if (s->q_len == 0) {
                        pthread_mutex_unlock(&s->lock);
                        group_commit(s);
                        return NULL;
                }
                PageItem item = s->queue[s->q_head];
                s->q_head = (s->q_head + 1) % QUEUE_MAX;
                s->q_len--;
                bool skip = item.st->write_failed;
                pthread_cond_broadcast(&s->changed);
                pthread_mutex_unlock(&s->lock);

                int r = skip || run_cancelled(s->ctx) ? 0 : write_page(s, item.st, item.nodes, error, sizeof error);
                cJSON_Delete(item.nodes);
                if (r < 0) {
                        char m[GAZELLE_ERROR_MAX + 64];
                        snprintf(m, sizeof m, "%s : %s", tables[item.st->entity].label, error);
                        s->tx_streams[item.st - s->streams] = true;
                        group_failed(s, r, m);
                        continue;
                }
                pthread_mutex_lock(&s->lock);
                bool caught_up = s->q_len == 0;
                pthread_mutex_unlock(&s->lock);
                if (caught_up || s->tx_pages >= GROUP_MAX)
                        group_commit(s);
        }
}

/* Main thread: hand the page to the writer (waiting while QUEUE_MAX pages are pending) and
 * return, so that curl sends the next request at once. */
static int on_page(void *userdata, cJSON *nodes, char *error, size_t error_size) {
        Stream *st = userdata;
        Sync *s = st->s;

        pthread_mutex_lock(&s->lock);
        while (s->q_len == QUEUE_MAX && !st->write_failed)
                pthread_cond_wait(&s->changed, &s->lock);
        bool failed = st->write_failed;
        if (!failed) {
                s->queue[(s->q_head + s->q_len) % QUEUE_MAX] = (PageItem) { st, nodes };
                s->q_len++;
                pthread_cond_broadcast(&s->changed);
        }
        pthread_mutex_unlock(&s->lock);

        if (failed) {
                cJSON_Delete(nodes);
                snprintf(error, error_size, "arrêt après une erreur d'écriture");
                return -EIO;
        }
        if (run_cancelled(s->ctx)) {
                snprintf(error, error_size, "interrompue par un signal");
                return -ECANCELED;
        }
        return 0;
}

/* Either thread. */
static void add_error(Sync *s, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *m = xvasprintf(fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&s->lock);
        if (!s->first_error)
                s->first_error = r;
        if (cJSON_GetArraySize(s->errors) < ERRORS_MAX)
                cJSON_AddItemToArray(s->errors, cJSON_CreateString(m));
        pthread_mutex_unlock(&s->lock);
        log_full(&s->ctx->log, LOG_ERR, r, NULL, NULL, NULL, "Sync Gazelle : %s", m);
        free(m);
}

static void on_end(void *userdata, int r, const char *error) {
        Stream *st = userdata;
        if (r < 0) {
                pthread_mutex_lock(&st->s->lock);
                bool reported = st->write_failed; /* the writer already said why */
                pthread_mutex_unlock(&st->s->lock);
                if (!reported)
                        add_error(st->s, r, "%s : %s", tables[st->entity].label, error ?: strerror(-r));
                return;
        }
        st->ended = true;
        log_run(&st->s->ctx->log, LOG_INFO, "Sync Gazelle : %s : dernière page reçue", tables[st->entity].label);
}

/* ---- after a completed pass ---- */

static int count(Sync *s, const char *sql, const DbValue *p, size_t n, int64_t *ret) {
        int r = db_query_int(s->db, sql, p, n, ret);
        return r < 0 ? r : 0;
}

/* Rows of a table not seen by this completed full pass get deleted_at, unless that would be
 * more than the threshold of the live rows. */
static int infer_deletions(Sync *s, Entity e) {
        const EntityTable *t = &tables[e];
        int64_t live = 0, gone = 0;
        _cleanup_free_ char *q_live = xasprintf("SELECT count(*) FROM %s WHERE deleted_at IS NULL", t->name);
        _cleanup_free_ char *q_gone = xasprintf("SELECT count(*) FROM %s WHERE deleted_at IS NULL AND synced_at < $1",
                                                t->name);
        int r = count(s, q_live, DB_NO_PARAMS, &live);
        if (r >= 0)
                r = count(s, q_gone, DB_PARAMS(DBV_T(s->now)), &gone);
        if (r < 0)
                return r;
        if (gone == 0)
                return 0;
        if (s->stats[e == E_CONTACTS ? E_CLIENTS : e].rejected > 0) {
                /* Records without id were in the pass: absence proves nothing. */
                log_run(&s->ctx->log, LOG_WARNING, "Sync Gazelle : %s : enregistrements rejetés, %" PRId64 " absent(s) "
                        "non supprimé(s)", t->label, gone);
                return 0;
        }
        if (gone * 100 > live * (int64_t) s->delete_max_percent) {
                _cleanup_free_ char *m = xasprintf("%s : %" PRId64 " sur %" PRId64 " absents de Gazelle (plus de %u %%) — "
                                                   "aucune suppression faite, vérifiez Gazelle", t->label, gone, live,
                                                   s->delete_max_percent);
                cJSON_AddItemToArray(s->warnings, cJSON_CreateString(m));
                log_run(&s->ctx->log, LOG_WARNING, "Sync Gazelle : %s", m);
                return 0;
        }
        _cleanup_free_ char *u = xasprintf("UPDATE %s SET deleted_at = $1 WHERE deleted_at IS NULL AND synced_at < $1",
                                           t->name);
        r = db_exec(s->db, u, DB_PARAMS(DBV_T(s->now)));
        if (r < 0)
                return r;
        s->stats[e].deleted += (unsigned) r;
        return 0;
}

/* Appointments that this completed pass did not return, where it certainly covered, were
 * cancelled or deleted in Gazelle: no ghost appointments. Near the window's edges an absence
 * may only mean that Gazelle reads the date filters differently: those are left alone. */
static int cancel_vanished(Sync *s, Stream *st) {
        int64_t in_window = 0, gone = 0;
        const DbValue win[] = { DBV_T(st->win_start), DBV_T(st->win_end),
                                DBV_T(s->now) };
        if (s->stats[E_APPOINTMENTS].rejected > 0) {
                /* A record without id was in the pass: absence proves nothing. */
                _cleanup_free_ char *m = xasprintf("rendez-vous : %u enregistrement(s) sans id dans la réponse — aucun "
                                                   "rendez-vous absent marqué annulé", s->stats[E_APPOINTMENTS].rejected);
                cJSON_AddItemToArray(s->warnings, cJSON_CreateString(m));
                log_run(&s->ctx->log, LOG_WARNING, "Sync Gazelle : %s", m);
                return 0;
        }
        st->absences_known = true;
        int r = count(s, "SELECT count(*) FROM gazelle_appointments WHERE start_at >= $1 AND start_at < $2 "
                      "AND deleted_at IS NULL", win, 2, &in_window);
        if (r >= 0)
                r = count(s, "SELECT count(*) FROM gazelle_appointments WHERE start_at >= $1 AND start_at < $2 "
                          "AND synced_at < $3 AND deleted_at IS NULL AND (status IS NULL OR status <> 'CANCELED')",
                          win, 3, &gone);
        if (r < 0 || gone == 0)
                return r;
        if (gone * 100 > in_window * (int64_t) s->delete_max_percent) {
                _cleanup_free_ char *m = xasprintf("rendez-vous : %" PRId64 " sur %" PRId64 " absents de la fenêtre (plus "
                                                   "de %u %%) — aucun marqué annulé, vérifiez Gazelle", gone, in_window,
                                                   s->delete_max_percent);
                cJSON_AddItemToArray(s->warnings, cJSON_CreateString(m));
                log_run(&s->ctx->log, LOG_WARNING, "Sync Gazelle : %s", m);
                return 0;
        }
        r = db_exec(s->db, "UPDATE gazelle_appointments SET status = 'CANCELED' WHERE start_at >= $1 AND start_at < $2 "
                    "AND synced_at < $3 AND deleted_at IS NULL AND (status IS NULL OR status <> 'CANCELED')", win, 3);
        if (r < 0)
                return r;
        s->stats[E_APPOINTMENTS].deleted += (unsigned) r;
        return 0;
}

static int mark_complete(Sync *s, const char *entity, const char *hwm) {
        int r = db_exec(s->db,
                        "INSERT INTO sync_state (entity, high_water_mark, last_complete_at, last_run_id, updated_at) "
                        "VALUES ($1, $2, $3, $4, $3) ON CONFLICT (entity) DO UPDATE SET "
                        "high_water_mark = coalesce(excluded.high_water_mark, sync_state.high_water_mark), "
                        "last_complete_at = excluded.last_complete_at, last_run_id = excluded.last_run_id, "
                        "updated_at = excluded.updated_at",
                        DB_PARAMS(DBV_TEXT_OR_NULL(entity), DBV_TEXT_OR_NULL(isempty(hwm) ? NULL : hwm),
                                  DBV_T(s->now), DBV_TEXT_OR_NULL(s->ctx->run_id)));
        return r < 0 ? r : 0;
}

/* One transaction per completed entity: its deletions and its mark move together. */
static int finish_stream(Sync *s, Stream *st) {
        int r = db_begin(s->db);
        if (r < 0)
                return r;
        switch (st->entity) {
        case E_CLIENTS:
                r = infer_deletions(s, E_CLIENTS);
                if (r >= 0)
                        r = infer_deletions(s, E_CONTACTS);
                if (r >= 0)
                        r = mark_complete(s, "clients", NULL);
                if (r >= 0)
                        r = mark_complete(s, "contacts", NULL);
                break;
        case E_PIANOS:
                r = infer_deletions(s, E_PIANOS);
                if (r >= 0)
                        r = mark_complete(s, "pianos", NULL);
                break;
        case E_TIMELINE:
                if (st->full_pass)
                        r = infer_deletions(s, E_TIMELINE);
                if (r >= 0)
                        r = mark_complete(s, "timeline_entries", st->hwm);
                break;
        case E_APPOINTMENTS:
                r = cancel_vanished(s, st);
                if (r >= 0)
                        r = mark_complete(s, "appointments", NULL);
                break;
        default:
                abort();
        }
        if (r >= 0)
                r = db_commit(s->db);
        if (r < 0)
                (void) db_rollback(s->db);
        return r;
}

/* ---- streams ---- */

static int timeline_since(Sync *s, char since[static ISO_UTC_MAX]) {
        _cleanup_free_ char *hwm = NULL;
        usec_t t;
        since[0] = 0;
        if (s->ctx->options.full)
                return 0;
        int r = db_query_text(s->db, "SELECT high_water_mark FROM sync_state WHERE entity = 'timeline_entries'",
                              DB_NO_PARAMS, &hwm);
        if (r < 0)
                return r;
        if (!hwm || parse_iso_utc(hwm, &t) < 0)
                return 0; /* never completed: a full pass */
        format_iso_utc(t > TIMELINE_OVERLAP_USEC ? t - TIMELINE_OVERLAP_USEC : 0, since);
        return 0;
}

static void stream_add(Sync *s, Entity e, const char *query, const char *field) {
        Stream *st = &s->streams[s->n_streams++];
        *st = (Stream) { .s = s, .entity = e, .query = query, .field = field,
                         .main = { .t = &tables[e] }, .aux = { .t = &tables[e == E_CLIENTS ? E_CONTACTS : E_USERS] } };
}

static int stream_start(Sync *s, Stream *st, const char *since) {
        cJSON *vars = cJSON_CreateObject();
        if (st->entity == E_TIMELINE) {
                st->full_pass = isempty(since);
                if (!isempty(since))
                        cJSON_AddStringToObject(vars, "occurredAtGet", since);
        }
        if (st->entity == E_APPOINTMENTS) {
                char a[16], b[16];
                usec_t start, end;
                cJSON *f = cJSON_AddObjectToObject(vars, "filters");
                cJSON_AddStringToObject(f, "startOn", format_local_date(st->from, a));
                cJSON_AddStringToObject(f, "endOn", format_local_date(st->to, b));
                /* Absences mean something only where the filter covers whatever Gazelle's reading. */
                date_range_certain_bounds(st->from, st->to, &start, &end);
                format_iso_utc(start, st->win_start);
                format_iso_utc(end, st->win_end);
        }
        st->started = true;
        return gazelle_paginate(s->g, st->query, st->field, vars, on_page, on_end, st);
}

static cJSON *entity_stats_json(const EntityStats *e, bool with_deleted) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "fetched", e->fetched);
        cJSON_AddNumberToObject(o, "inserted", e->inserted);
        cJSON_AddNumberToObject(o, "updated", e->updated);
        if (with_deleted)
                cJSON_AddNumberToObject(o, "deleted", e->deleted);
        if (e->rejected)
                cJSON_AddNumberToObject(o, "rejected", e->rejected);
        return o;
}

static void fill_result(Sync *s, TaskResult *result) {
        cJSON *st = result->stats;
        unsigned requests = 0, retries = 0, rejected = 0;
        bool appointments_only = s->n_streams == 1 && s->streams[0].entity == E_APPOINTMENTS;

        for (Entity e = 0; e < _E_MAX; e++) {
                if (appointments_only && e != E_APPOINTMENTS && e != E_USERS)
                        continue;
                cJSON *o = entity_stats_json(&s->stats[e], e != E_USERS);
                if (e == E_APPOINTMENTS)
                        cJSON_AddNumberToObject(o, "cancelled", s->stats[e].deleted);
                cJSON_AddItemToObject(st, tables[e].key, o);
                rejected += s->stats[e].rejected;
        }
        gazelle_counters(s->g, &requests, &retries);
        cJSON_AddNumberToObject(st, "pages", s->pages);
        cJSON_AddNumberToObject(st, "requests", requests);
        cJSON_AddNumberToObject(st, "retries", retries);
        cJSON_AddNumberToObject(st, "rejected", rejected);
        for (size_t i = 0; i < s->n_streams; i++) {
                Stream *x = &s->streams[i];
                if (x->entity == E_TIMELINE)
                        cJSON_AddStringToObject(st, "timeline_mode", x->full_pass ? "full" : "incremental");
                if (x->entity == E_APPOINTMENTS) {
                        char a[16], b[16];
                        cJSON *w = cJSON_AddObjectToObject(st, "appointments_window");
                        cJSON_AddStringToObject(w, "from", format_local_date(x->from, a));
                        cJSON_AddStringToObject(w, "to", format_local_date(x->to, b));
                }
        }
        if (s->dry_run)
                cJSON_AddBoolToObject(st, "dry_run", true);
        /* Copies: the stats outlive this Sync. */
        if (cJSON_GetArraySize(s->reasons) > 0)
                cJSON_AddItemToObject(st, "rejected_reasons", cJSON_Duplicate(s->reasons, true));
        if (cJSON_GetArraySize(s->errors) > 0)
                cJSON_AddItemToObject(st, "errors", cJSON_Duplicate(s->errors, true));
        if (cJSON_GetArraySize(s->warnings) > 0)
                cJSON_AddItemToObject(st, "warnings", cJSON_Duplicate(s->warnings, true));

        /* One French line: what arrived, then what went wrong. */
        char summary[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < s->n_streams; i++) {
                Entity e = s->streams[i].entity;
                len += (size_t) snprintf(summary + len, sizeof summary - len, "%s%s %u (+%u, ~%u, -%u)",
                                         len ? ", " : "", tables[e].label, s->stats[e].fetched, s->stats[e].inserted,
                                         s->stats[e].updated, s->stats[e].deleted);
                if (len >= sizeof summary)
                        break;
        }
        const char *dry = s->dry_run ? " (essai à blanc : rien n'a été écrit)" : "";
        if (cJSON_GetArraySize(s->errors) > 0) {
                cJSON *first = cJSON_GetArrayItem(s->errors, 0);
                task_result_set(result, RUN_ERROR, "Échec de la synchronisation — %s%s ; %s%s",
                                first->valuestring, cJSON_GetArraySize(s->errors) > 1 ? " (et d'autres erreurs)" : "",
                                summary, dry);
        } else if (rejected > 0)
                task_result_set(result, RUN_WARNING, "%u enregistrement(s) rejeté(s), dont « %s » ; %s%s", rejected,
                                cJSON_GetArrayItem(s->reasons, 0)->valuestring, summary, dry);
        else if (cJSON_GetArraySize(s->warnings) > 0)
                task_result_set(result, RUN_WARNING, "Suppressions retenues : %s ; %s%s",
                                cJSON_GetArrayItem(s->warnings, 0)->valuestring, summary, dry);
        else
                task_result_set(result, RUN_SUCCESS, "Synchronisation terminée : %s ; %u pages, %u requêtes%s", summary,
                                s->pages, requests, dry);
}

/* Lets the writer drain the queue and waits for it. */
static void writer_stop(Sync *s) {
        if (!s->writer_started)
                return;
        pthread_mutex_lock(&s->lock);
        s->q_closed = true;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->writer, NULL);
        s->writer_started = false;
}

static void sync_done(Sync *s) {
        writer_stop(s);
        /* rv_alerts keeps its connection after the appointments step: let other hosts sync. */
        if (s->sync_lease) {
                s->sync_lease = task_lease_keeper_stop(s->sync_lease);
                if (task_lease_release(s->db, task_get(TASK_SYNC_GAZELLE), s->ctx->run_id) < 0)
                        log_warning("Failed to release the sync's lease, ignoring (it expires by itself): %s",
                                    db_error(s->db));
        }
        if (s->sync_lock_fd >= 0)
                s->sync_lock_fd = (close(s->sync_lock_fd), -1);
        for (size_t i = 0; i < s->q_len; i++)
                cJSON_Delete(s->queue[(s->q_head + i) % QUEUE_MAX].nodes);
        for (size_t i = 0; i < s->n_streams; i++) {
                rowset_done(&s->streams[i].main);
                rowset_done(&s->streams[i].aux);
        }
        for (size_t e = 0; e < _E_MAX; e++) {
                sync_sqlite_stmts_clear(&s->stmts[e]);
                free(s->pg_sql[e]);
        }
        db_close(s->wdb);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->changed);
        cJSON_Delete(s->reasons);
        cJSON_Delete(s->errors);
        cJSON_Delete(s->warnings);
        gazelle_client_free(s->g);
}

/* One sync at a time, whatever host and task runs it: sync_gazelle's runner holds that task's
 * lease already; rv_alerts' appointments step takes it for its own run (and keeps it renewed),
 * after sync_gazelle's lock on this host, as every holder of a task's lease does (task-lock.h).
 * 1 taken or held, 0 another run holds it (*holder), -errno. */
static int take_sync_lease(Sync *s, TaskLeaseHolder *holder) {
        RunContext *ctx = s->ctx;
        if (ctx->task->id == TASK_SYNC_GAZELLE)
                return 1;
        const Task *t = task_get(TASK_SYNC_GAZELLE);
        char host[256];
        unsigned seconds = ctx->config->lease_seconds;
        int r = task_lock_take(ctx->config, t, &s->sync_lock_fd);
        if (r == -EBUSY) {
                snprintf(holder->host, sizeof holder->host, "%s", host_name(host));
                snprintf(holder->run_id, sizeof holder->run_id, "?");
                return 0;
        }
        if (r < 0)
                return r;
        r = task_lease_take(s->db, t, host_name(host), ctx->run_id, seconds, holder);
        if (r == -EBUSY)
                return 0;
        if (r < 0)
                return r;
        r = task_lease_keeper_start(ctx->config, t, ctx->run_id, seconds, (volatile sig_atomic_t *) ctx->cancelled,
                                    &s->sync_lease);
        if (r < 0) {
                (void) task_lease_release(s->db, t, ctx->run_id);
                return r;
        }
        return 1;
}

static int sync_execute(RunContext *ctx, bool appointments_only, LocalDate from, LocalDate to, TaskResult *result,
                        char *seen_at) {
        Sync s = { .ctx = ctx, .db = ctx->db, .dry_run = ctx->options.dry_run,
                   .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
                   .reasons = cJSON_CreateArray(), .errors = cJSON_CreateArray(), .warnings = cJSON_CreateArray(),
                   .sync_lock_fd = -1 };
        char error[GAZELLE_ERROR_MAX] = "";
        int r;

        format_iso_utc(now_realtime(), s.now);
        s.delete_max_percent = ctx->config->sync_delete_max_percent;

        TaskLeaseHolder holder = {};
        r = take_sync_lease(&s, &holder);
        if (r <= 0) {
                if (r == 0)
                        task_result_set(result, RUN_SKIPPED, "Une autre synchronisation Gazelle est en cours (hôte %s, "
                                        "exécution %s) : rien n'a été fait", holder.host, holder.run_id);
                else
                        task_result_set(result, RUN_ERROR, "Bail de la synchronisation dans la base : %s", db_error(s.db));
                sync_done(&s);
                return r;
        }

        if (!s.dry_run) {
                r = store_open(ctx->config, &s.wdb);
                if (r < 0) {
                        task_result_set(result, RUN_ERROR, "Connexion d'écriture à la base : %s",
                                        s.wdb ? db_error(s.wdb) : strerror(-r));
                        sync_done(&s);
                        return r;
                }
        }
        if (s.wdb && db_backend(s.wdb) == DB_SQLITE) {
                /* Thousands of small commits: checkpoint (and fsync) every ~80 MiB of WAL rather
                 * than every 4 MiB, and keep the indexes' hot pages in a 16 MiB cache. Both last
                 * for this connection only. */
                if (db_exec(s.wdb, "PRAGMA wal_autocheckpoint = 20000", DB_NO_PARAMS) < 0 ||
                    db_exec(s.wdb, "PRAGMA cache_size = -16384", DB_NO_PARAMS) < 0)
                        log_warning("Failed to tune the SQLite connection for the sync, ignoring: %s", db_error(s.wdb));
        }

        r = gazelle_client_new(ctx->config, s.db, &s.g, error, sizeof error);
        if (r >= 0) {
                gazelle_set_cancel(s.g, ctx->cancelled);
                r = gazelle_authenticate(s.g, error, sizeof error);
        }
        if (r < 0) {
                task_result_set(result, RUN_ERROR, "Gazelle : %s", error);
                sync_done(&s);
                return r;
        }

        char since[ISO_UTC_MAX] = "";
        if (!appointments_only) {
                r = timeline_since(&s, since);
                if (r < 0) {
                        task_result_set(result, RUN_ERROR, "Lecture de sync_state : %s", db_error(s.db));
                        sync_done(&s);
                        return r;
                }
                stream_add(&s, E_CLIENTS, QUERY_CLIENTS, "allClients");
                stream_add(&s, E_PIANOS, QUERY_PIANOS, "allPianos");
                stream_add(&s, E_TIMELINE, QUERY_TIMELINE, "allTimelineEntries");
        }
        stream_add(&s, E_APPOINTMENTS, QUERY_EVENTS, "allEventsBatched");
        s.streams[s.n_streams - 1].from = from;
        s.streams[s.n_streams - 1].to = to;

        log_progress(&ctx->log, "Sync Gazelle : démarrage (%s, %u requêtes en parallèle au plus)",
                     appointments_only ? "rendez-vous seulement" : !isempty(since) ? "entrées depuis la marque − 30 j" :
                                                                                    "passe complète",
                     gazelle_max_concurrency(s.g));
        r = pthread_create(&s.writer, NULL, writer_main, &s);
        if (r != 0) {
                task_result_set(result, RUN_ERROR, "Impossible de démarrer l'écriture des pages : %s", strerror(r));
                sync_done(&s);
                return -r;
        }
        s.writer_started = true;

        /* The longest pagination (the timeline) first, so it is never queued behind short ones. */
        for (size_t i = s.n_streams; i-- > 0;)
                (void) stream_start(&s, &s.streams[i], since);
        r = gazelle_run(s.g);
        if (r < 0 && r != -ECANCELED && cJSON_GetArraySize(s.errors) == 0)
                add_error(&s, r, "transferts HTTP : %s", strerror(-r));
        writer_stop(&s);

        for (size_t i = 0; i < s.n_streams; i++) {
                Stream *st = &s.streams[i];
                /* Complete: every page received and written. */
                st->complete = st->ended && !st->write_failed && !run_cancelled(ctx);
                if (st->complete)
                        log_run(&ctx->log, LOG_INFO, "Sync Gazelle : %s terminés (%u pages)", tables[st->entity].label,
                                st->pages);
        }
        for (size_t i = 0; i < s.n_streams && !s.dry_run; i++) {
                Stream *st = &s.streams[i];
                if (!st->complete)
                        continue;
                r = finish_stream(&s, st);
                if (r < 0) {
                        add_error(&s, r, "fin de %s : %s", tables[st->entity].label, db_error(s.db));
                        st->absences_known = false;
                }
                if (seen_at && st->entity == E_APPOINTMENTS && st->absences_known)
                        snprintf(seen_at, ISO_UTC_MAX, "%s", s.now);
        }
        if (run_cancelled(ctx) && cJSON_GetArraySize(s.errors) == 0)
                add_error(&s, -ECANCELED, "interrompue par un signal avant la fin");

        progress(&s);
        fill_result(&s, result);
        r = s.first_error;
        sync_done(&s);
        return r < 0 ? r : 0;
}

int sync_task_run(RunContext *ctx, TaskResult *result) {
        LocalDate today = local_date_of(now_realtime());
        return sync_execute(ctx, false, local_date_add_days(today, -APPOINTMENTS_DAYS_BACK),
                            local_date_add_days(today, APPOINTMENTS_DAYS_AHEAD), result, NULL);
}

int sync_appointments_window(RunContext *ctx, LocalDate from, LocalDate to, TaskResult *result,
                             char seen_at[static ISO_UTC_MAX]) {
        seen_at[0] = 0;
        return sync_execute(ctx, true, from, to, result, seen_at);
}
