/* SPDX-License-Identifier: MIT */
/* gazelle.c — the Gazelle API client: secrets and endpoints, OAuth tokens in the store, GraphQL
 * requests over http.h's curl multi, and pagination by pageInfo. See gazelle.h. */
#include "gazelle.h"

#include <limits.h>
#include <inttypes.h>
#include <stdarg.h>

#include "journal.h"
#include "store.h"
#include "utf8.h"
#include "timeutil.h"


/* Refresh when the access token has less than this left: a page must never start with a token
 * about to die. */
#define REFRESH_AHEAD_USEC (5 * 60 * USEC_PER_SEC)
#define SERVER_TEXT_MAX 200
/* 401s in a row for one request, whatever their reason: beyond, the server is refusing us. */
#define UNAUTHORIZED_MAX 8

struct GazelleClient {
        Db *db;
        Secrets *secrets;        /* the configuration's registry: every token is masked once known */
        HttpClient *http;        /* GraphQL, up to max_concurrency transfers */
        HttpClient *token_http;  /* token endpoint: blocking calls, also from GraphQL callbacks */
        unsigned max_concurrency;
        char *api_url, *token_url, *endpoint;
        char *redirect_uri;      /* OAuth redirect URI of the authorization code exchange */
        char *api_key;           /* API-key mode when set */
        char *client_id, *client_secret;
        char *access_token, *refresh_token;
        usec_t expires_at;       /* 0: unknown, refresh first */
        unsigned token_gen;      /* bumped by every new access token */
        bool token_accepted;     /* a request carrying the current access token succeeded */
        unsigned inflight;       /* requests out with the current access token */
        struct Pager *parked;    /* refused with the current token while others carrying it are out */
        char *auth_error;        /* a refused refresh: every later request fails with it at once */
};

typedef struct Pager {
        GazelleClient *g;
        struct Pager *next_parked;
        char *query;
        char *field;
        cJSON *variables;
        GazellePageFunc page;
        GazelleEndFunc end;
        void *userdata;
        char *last_cursor;
        unsigned token_gen;      /* the access token the current request carries */
        bool refreshed;          /* the current request already got its one refresh after a 401 */
        unsigned unauthorized;   /* 401s in a row for the current request */
        bool stopped;            /* page() failed: end() already ran */
} Pager;

static void set_error(char *error, size_t size, const char *fmt, ...) _printf_(3, 4);
static void set_error(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        if (!error || size == 0)
                return;
        va_start(ap, fmt);
        utf8_vformat(error, size, fmt, ap);
        va_end(ap);
}

/* "https://host:port/a/b?x" → "host:port/a/b" (no query string: it could hold a secret). */
static char *url_host_path(const char *url) {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        return strndup(p, strcspn(p, "?#")) ?: (abort(), NULL);
}

static void http_policy_from_config(const Config *c, HttpPolicy *p) {
        http_policy_default(p);
        p->max_attempts = c->http_max_attempts;
        p->attempt_timeout_usec = c->http_timeout_sec * USEC_PER_SEC;
        p->connect_timeout_usec = c->http_connect_timeout_sec * USEC_PER_SEC;
        p->budget_usec = c->http_budget_sec * USEC_PER_SEC;
        p->backoff_base_usec = c->http_backoff_ms * USEC_PER_MSEC;
        p->low_speed_time_sec = c->http_low_speed_sec;
}

GazelleClient *gazelle_client_free(GazelleClient *g) {
        if (!g)
                return NULL;
        http_client_free(g->http);
        http_client_free(g->token_http);
        free(g->api_url);
        free(g->token_url);
        free(g->redirect_uri);
        free(g->endpoint);
        free(g->auth_error);
        secret_free(g->api_key);
        secret_free(g->client_id);
        secret_free(g->client_secret);
        secret_free(g->access_token);
        secret_free(g->refresh_token);
        free(g);
        return NULL;
}

static int tokens_load(GazelleClient *g) {
        _cleanup_(db_cursor_freep) DbCursor *c = NULL;
        int r = db_query(g->db, "SELECT access_token, refresh_token, expires_at FROM gazelle_oauth_tokens WHERE id = 1",
                         DB_NO_PARAMS, &c);
        if (r < 0)
                return r;
        r = db_cursor_next(c);
        if (r <= 0)
                return r;
        secret_free(g->access_token);
        secret_free(g->refresh_token);
        g->access_token = db_cursor_text(c, 0) ? xstrdup(db_cursor_text(c, 0)) : NULL;
        g->refresh_token = db_cursor_text(c, 1) ? xstrdup(db_cursor_text(c, 1)) : NULL;
        secrets_add(g->secrets, g->access_token);
        secrets_add(g->secrets, g->refresh_token);
        g->expires_at = 0;
        if (db_cursor_text(c, 2) && parse_iso_utc(db_cursor_text(c, 2), &g->expires_at) < 0)
                g->expires_at = 0;
        return 1;
}

/* Committed on its own, never inside a caller's transaction: the rotated refresh token must be
 * durable before anything uses the new access token. */
static int tokens_save(GazelleClient *g) {
        char now[ISO_UTC_MAX], exp[ISO_UTC_MAX];
        format_iso_utc(now_realtime(), now);
        if (g->expires_at)
                format_iso_utc(g->expires_at, exp);
        int r = db_exec(g->db,
                        "INSERT INTO gazelle_oauth_tokens (id, access_token, refresh_token, token_type, expires_at, "
                        "updated_at) VALUES (1, $1, $2, 'Bearer', $3, $4) ON CONFLICT (id) DO UPDATE SET "
                        "access_token = excluded.access_token, refresh_token = excluded.refresh_token, "
                        "token_type = excluded.token_type, expires_at = excluded.expires_at, "
                        "updated_at = excluded.updated_at",
                        DB_PARAMS(DBV_TEXT_OR_NULL(g->access_token), DBV_TEXT_OR_NULL(g->refresh_token),
                                  g->expires_at ? (DbValue) { .type = DBV_TEXT, .s = exp } : DB_NULL,
                                  (DbValue) { .type = DBV_TEXT, .s = now }));
        return r < 0 ? r : 0;
}

int gazelle_client_new(const Config *config, Db *db, GazelleClient **ret, char *error, size_t error_size) {
        _cleanup_(gazelle_client_freep) GazelleClient *g = calloc(1, sizeof *g);
        HttpPolicy policy;
        int r;

        if (!g)
                abort();
        g->db = db;
        g->secrets = config->secrets;
        g->max_concurrency = config->gazelle_max_concurrency;
        http_policy_from_config(config, &policy);
        g->api_url = xstrdup(config->gazelle_api_url);
        g->token_url = xstrdup(config->gazelle_token_url);
        g->redirect_uri = xstrdup(config->gazelle_redirect_uri);
        g->endpoint = url_host_path(g->api_url);

        r = config_read_secret("gazelle-api-key", "GAZELLE_API_KEY", &g->api_key);
        if (r < 0) {
                set_error(error, error_size, "credential gazelle-api-key illisible : %s", strerror(-r));
                return r;
        }
        if (isempty(g->api_key)) {
                secret_free(TAKE_PTR(g->api_key));
                if ((r = config_read_secret("gazelle-client-id", "GAZELLE_CLIENT_ID", &g->client_id)) < 0 ||
                    (r = config_read_secret("gazelle-client-secret", "GAZELLE_CLIENT_SECRET", &g->client_secret)) < 0) {
                        set_error(error, error_size, "credential gazelle-client-id/secret illisible : %s", strerror(-r));
                        return r;
                }
                if (isempty(g->client_id) || isempty(g->client_secret)) {
                        set_error(error, error_size, "GAZELLE_CLIENT_ID et GAZELLE_CLIENT_SECRET (ou les credentials "
                                  "gazelle-client-id/gazelle-client-secret), ou GAZELLE_API_KEY, sont requis");
                        return -EINVAL;
                }
        }

        if ((r = http_client_new(&policy, g->max_concurrency, &g->http)) < 0 ||
            (r = http_client_new(&policy, 1, &g->token_http)) < 0) {
                set_error(error, error_size, "client HTTP : %s", strerror(-r));
                return r;
        }
        if (!g->api_key && db) {
                r = tokens_load(g);
                if (r < 0) {
                        set_error(error, error_size, "lecture des jetons Gazelle : %s", db_error(db));
                        return r;
                }
        }
        *ret = TAKE_PTR(g);
        return 0;
}

void gazelle_set_cancel(GazelleClient *g, const volatile sig_atomic_t *cancelled) {
        http_client_set_cancel(g->http, cancelled);
        http_client_set_cancel(g->token_http, cancelled);
}

unsigned gazelle_max_concurrency(const GazelleClient *g) {
        return g->max_concurrency;
}

void gazelle_counters(const GazelleClient *g, unsigned *ret_requests, unsigned *ret_retries) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        http_client_counters(g->http, &a, &b);
        http_client_counters(g->token_http, &c, &d);
        *ret_requests = a + c;
        *ret_retries = b + d;
}

const char *gazelle_endpoint(const GazelleClient *g) {
        return g->endpoint;
}

/* The text a server put in an error body, one line, bounded: OAuth's error_description, a
 * GraphQL errors[0].message, else the raw start of the body. */
static void error_body_text(const char *body, char *buf, size_t size) {
        buf[0] = 0;
        if (isempty(body))
                return;
        cJSON *j = cJSON_Parse(body);
        const char *s = NULL;
        if (j) {
                cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error_description");
                if (!cJSON_IsString(e))
                        e = cJSON_GetObjectItemCaseSensitive(j, "error");
                if (!cJSON_IsString(e))
                        e = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
                                cJSON_GetObjectItemCaseSensitive(j, "errors"), 0), "message");
                s = cJSON_IsString(e) ? e->valuestring : NULL;
        }
        utf8_excerpt(buf, size, s ?: body, SERVER_TEXT_MAX);
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
        cJSON_Delete(j);
}

/* One form POST to the token endpoint; on success the tokens are saved (committed) before the
 * caller can use the new access token. */
static int token_request(GazelleClient *g, const char *grant, const char *field, const char *value,
                         const char *redirect_uri, char *error, size_t error_size) {
        _cleanup_free_ char *id = http_escape(g->client_id), *secret = http_escape(g->client_secret),
                            *v = http_escape(value), *redir = redirect_uri ? http_escape(redirect_uri) : NULL;
        _cleanup_free_ char *body = NULL;
        if (asprintf(&body, "grant_type=%s&client_id=%s&client_secret=%s&%s=%s%s%s", grant, id, secret, field, v,
                     redir ? "&redirect_uri=" : "", strempty(redir)) < 0)
                abort();
        static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded",
                                               "Accept: application/json", NULL };
        HttpRequest req = { .method = "POST", .url = g->token_url, .headers = headers, .body = body,
                            .body_len = strlen(body) };
        HttpResponse resp = {};
        int r = http_perform(g->token_http, &req, &resp);
        explicit_bzero(body, strlen(body));
        if (r < 0) {
                if (resp.status == 400 || resp.status == 401)
                        set_error(error, error_size, "jeton Gazelle refusé (%s) — relancez « gazelle-scheduler auth »",
                                  resp.error);
                else
                        set_error(error, error_size, "jeton Gazelle : %s", resp.error);
                http_response_clear(&resp);
                return r;
        }

        _cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(resp.body);
        http_response_clear(&resp);
        cJSON *access = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        cJSON *refresh = cJSON_GetObjectItemCaseSensitive(j, "refresh_token");
        cJSON *expires = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
        if (!cJSON_IsString(access) || isempty(access->valuestring)) {
                _cleanup_free_ char *hp = url_host_path(g->token_url);
                set_error(error, error_size, "jeton Gazelle : réponse sans access_token de POST %s", hp);
                return -EBADMSG;
        }
        secret_free(g->access_token);
        g->access_token = xstrdup(access->valuestring);
        secrets_add(g->secrets, g->access_token);
        g->token_gen++;
        g->token_accepted = false;
        g->inflight = 0; /* those out carry an older token now */
        /* No refresh_token in the answer: the old one stays valid. */
        if (cJSON_IsString(refresh) && !isempty(refresh->valuestring)) {
                secret_free(g->refresh_token);
                g->refresh_token = xstrdup(refresh->valuestring);
                secrets_add(g->secrets, g->refresh_token);
        }
        double secs = cJSON_IsNumber(expires) && expires->valuedouble > 0 ? expires->valuedouble : 3600;
        g->expires_at = now_realtime() + (usec_t) (secs * USEC_PER_SEC);
        explicit_bzero(access->valuestring, strlen(access->valuestring));
        if (cJSON_IsString(refresh))
                explicit_bzero(refresh->valuestring, strlen(refresh->valuestring));

        r = tokens_save(g);
        if (r < 0) {
                set_error(error, error_size, "impossible d'enregistrer le nouveau jeton Gazelle dans la base : %s",
                          db_error(g->db));
                /* Never use an access token whose refresh token we could not keep. */
                secret_free(TAKE_PTR(g->access_token));
                return r;
        }
        return 0;
}

static int refresh(GazelleClient *g, char *error, size_t error_size) {
        if (isempty(g->refresh_token)) {
                set_error(error, error_size, "aucun jeton Gazelle dans la base : lancez « gazelle-scheduler auth »");
                return -ENOKEY;
        }
        if (g->auth_error) {
                set_error(error, error_size, "%s", g->auth_error);
                return -EACCES;
        }
        _cleanup_free_ char *rt = xstrdup(g->refresh_token);
        int r = token_request(g, "refresh_token", "refresh_token", rt, NULL, error, error_size);
        explicit_bzero(rt, strlen(rt));
        if (r == -EBADMSG && error)
                g->auth_error = xstrdup(error); /* refused: asking again cannot help */
        return r;
}

int gazelle_authenticate(GazelleClient *g, char *error, size_t error_size) {
        if (g->api_key)
                return 0;
        if (g->access_token && g->expires_at > now_realtime() + REFRESH_AHEAD_USEC)
                return 0;
        return refresh(g, error, error_size);
}

static void pager_free(Pager *p) {
        if (!p)
                return;
        free(p->query);
        free(p->field);
        cJSON_Delete(p->variables);
        free(p->last_cursor);
        free(p);
}

static void on_response(HttpClient *c, int r, HttpResponse *resp, void *userdata);

static int pager_submit(Pager *p, char *error, size_t error_size) {
        GazelleClient *g = p->g;
        int r = gazelle_authenticate(g, error, error_size);
        if (r < 0)
                return r;

        _cleanup_(cJSON_Deletep) cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "query", p->query);
        cJSON_AddItemReferenceToObject(req, "variables", p->variables);
        _cleanup_free_ char *body = cJSON_PrintUnformatted(req);
        _cleanup_free_ char *auth = g->api_key ? xasprintf("x-gazelle-api-key: %s", g->api_key)
                                               : xasprintf("Authorization: Bearer %s", g->access_token);
        const char *headers[] = { "Content-Type: application/json", "Accept: application/json", auth, NULL };
        HttpRequest hr = { .method = "POST", .url = g->api_url, .headers = headers, .body = body,
                           .body_len = strlen(body) };
        p->token_gen = g->token_gen;
        r = http_submit(g->http, &hr, on_response, p);
        explicit_bzero(auth, strlen(auth));
        if (r < 0) {
                set_error(error, error_size, "POST %s : %s", g->endpoint, strerror(-r));
                return r;
        }
        g->inflight++;
        return 0;
}

static void pager_end(Pager *p, int r, const char *error) {
        p->end(p->userdata, r, error);
        pager_free(p);
}

/* The `data.<field>` object of a GraphQL answer, or NULL with error set. */
static cJSON *graphql_data(Pager *p, cJSON *j, char *error, size_t error_size) {
        const char *ep = p->g->endpoint;
        if (!cJSON_IsObject(j)) {
                set_error(error, error_size, "POST %s : réponse JSON invalide (%s)", ep, p->field);
                return NULL;
        }
        cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
        if (cJSON_IsArray(errors) && cJSON_GetArraySize(errors) > 0) {
                cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errors, 0), "message");
                char text[SERVER_TEXT_MAX + 1];
                set_error(error, error_size, "POST %s : erreur GraphQL (%s) : %s", ep, p->field,
                          utf8_excerpt(text, sizeof text, cJSON_IsString(m) ? m->valuestring : "(sans message)",
                                       SERVER_TEXT_MAX));
                return NULL;
        }
        cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), p->field);
        if (!cJSON_IsObject(data)) {
                set_error(error, error_size, "POST %s : réponse sans data.%s", ep, p->field);
                return NULL;
        }
        return data;
}

typedef enum Unauthorized {
        UNAUTHORIZED_RESEND,  /* send it again (with a refresh when the token is gone) */
        UNAUTHORIZED_PARK,    /* wait for the other requests carrying the same token */
        UNAUTHORIZED_REFUSED, /* the refusal is real: fail */
} Unauthorized;

/* Drops an access token that has expired, so that the next submission refreshes it. */
static void token_expired(GazelleClient *g, unsigned gen) {
        if (gen == g->token_gen)
                secret_free(TAKE_PTR(g->access_token));
}

/* A request got 401. With several requests in flight, a token refresh makes every request that
 * left before it carry an older token: those are simply resent with the current one, spending
 * nothing. A current token that had already worked has expired: refresh and resend. One not yet
 * seen working gets one refresh for this request; refused again, the request waits for the
 * others carrying that token (the server may have served them first and let it expire): if one
 * of them succeeds it expired, if none does the refusal is real. */
static Unauthorized judge_unauthorized(Pager *p) {
        GazelleClient *g = p->g;
        if (++p->unauthorized > UNAUTHORIZED_MAX)
                return UNAUTHORIZED_REFUSED;
        if (p->token_gen != g->token_gen)
                return UNAUTHORIZED_RESEND;
        if (!g->token_accepted && p->refreshed)
                return g->inflight > 0 ? UNAUTHORIZED_PARK : UNAUTHORIZED_REFUSED;
        if (!g->token_accepted)
                p->refreshed = true;
        token_expired(g, p->token_gen);
        return UNAUTHORIZED_RESEND;
}

static void refused_error(const Pager *p, const char *what, char *error, size_t error_size) {
        set_error(error, error_size, "%s — accès refusé (%s)", what,
                  p->unauthorized > UNAUTHORIZED_MAX
                          ? "jeton refusé à chaque nouvel essai ; si cela persiste, relancez « gazelle-scheduler auth »"
                          : "jeton refusé même après rafraîchissement ; vérifiez l'application OAuth Gazelle puis "
                            "relancez « gazelle-scheduler auth »");
}

static void pager_resend(Pager *p) {
        char error[GAZELLE_ERROR_MAX];
        int r = pager_submit(p, error, sizeof error);
        if (r < 0)
                pager_end(p, r, error);
}

/* The parked requests, once their token is judged: it changed (resend), it worked for another
 * request (it expired: refresh and resend), or every request carrying it came back refused. */
static void wake_parked(GazelleClient *g) {
        if (!g->parked)
                return;
        bool stale = g->parked->token_gen != g->token_gen; /* all were parked with one token */
        if (!stale && !g->token_accepted && g->inflight > 0)
                return;
        bool refused = !stale && !g->token_accepted;
        Pager *list = TAKE_PTR(g->parked);
        while (list) {
                Pager *p = list;
                list = p->next_parked;
                p->next_parked = NULL;
                if (refused) {
                        char error[GAZELLE_ERROR_MAX];
                        _cleanup_free_ char *what = xasprintf("POST %s : HTTP 401", g->endpoint);
                        refused_error(p, what, error, sizeof error);
                        pager_end(p, -EACCES, error);
                        continue;
                }
                token_expired(g, p->token_gen);
                pager_resend(p);
        }
}

static void handle_response(Pager *p, int r, HttpResponse *resp) {
        GazelleClient *g = p->g;
        char error[GAZELLE_ERROR_MAX];

        if (p->stopped) {
                /* page() failed while this request was in flight: end() already ran. */
                pager_free(p);
                return;
        }
        if (r == -EBADMSG && resp->status == 401 && !g->api_key) {
                switch (judge_unauthorized(p)) {
                case UNAUTHORIZED_RESEND:
                        pager_resend(p);
                        return;
                case UNAUTHORIZED_PARK:
                        p->next_parked = g->parked;
                        g->parked = p;
                        return;
                case UNAUTHORIZED_REFUSED:
                        break;
                }
        }
        if (r < 0) {
                char text[SERVER_TEXT_MAX + 1];
                error_body_text(resp->body, text, sizeof text);
                if (resp->status == 401 && g->api_key)
                        set_error(error, sizeof error, "%s : %s — accès refusé (vérifiez GAZELLE_API_KEY)", resp->error,
                                  text);
                else if (resp->status == 401) {
                        _cleanup_free_ char *what = xasprintf("%s : %s", resp->error, text);
                        refused_error(p, what, error, sizeof error);
                }
                else if (resp->status > 0 && !isempty(text) && !strstr(resp->error, text))
                        set_error(error, sizeof error, "%s : %s", resp->error, text);
                else
                        set_error(error, sizeof error, "%s", isempty(resp->error) ? strerror(-r) : resp->error);
                pager_end(p, r, error);
                return;
        }
        p->refreshed = false;
        p->unauthorized = 0;
        if (p->token_gen == g->token_gen)
                g->token_accepted = true;

        _cleanup_(cJSON_Deletep) cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
        free(TAKE_PTR(resp->body));
        cJSON *data = graphql_data(p, j, error, sizeof error);
        if (!data) {
                pager_end(p, -EBADMSG, error);
                return;
        }
        cJSON *nodes = cJSON_GetObjectItemCaseSensitive(data, "nodes");
        cJSON *nodes_owned = NULL;
        cJSON *info = cJSON_GetObjectItemCaseSensitive(data, "pageInfo");
        cJSON *more = cJSON_GetObjectItemCaseSensitive(info, "hasNextPage");
        cJSON *cursor = cJSON_GetObjectItemCaseSensitive(info, "endCursor");
        if (!cJSON_IsArray(nodes) || !cJSON_IsBool(more)) {
                pager_end(p, -EBADMSG, (set_error(error, sizeof error, "POST %s : page de %s sans nodes ou pageInfo",
                                                  g->endpoint, p->field), error));
                return;
        }

        bool last = !cJSON_IsTrue(more);
        /* page() takes the records over (a writer may keep them after this callback). */
        nodes_owned = cJSON_DetachItemViaPointer(data, nodes);
        if (!last) {
                if (!cJSON_IsString(cursor) || isempty(cursor->valuestring) ||
                    streq_ptr(p->last_cursor, cursor->valuestring)) {
                        pager_end(p, -EBADMSG, (set_error(error, sizeof error, "POST %s : pagination de %s bloquée "
                                                          "(endCursor absent ou répété)", g->endpoint, p->field), error));
                        return;
                }
                free(p->last_cursor);
                p->last_cursor = xstrdup(cursor->valuestring);
                cJSON_DeleteItemFromObjectCaseSensitive(p->variables, "after");
                cJSON_AddStringToObject(p->variables, "after", p->last_cursor);
                /* Ask for the next page first: the server works while we write this one. */
                r = pager_submit(p, error, sizeof error);
                if (r < 0) {
                        p->stopped = true;
                        /* Still write this page: it is whole and consistent. */
                        char perr[GAZELLE_ERROR_MAX];
                        (void) p->page(p->userdata, nodes_owned, perr, sizeof perr);
                        pager_end(p, r, error);
                        return;
                }
        }

        r = p->page(p->userdata, nodes_owned, error, sizeof error);
        if (r < 0) {
                if (last)
                        pager_end(p, r, error);
                else {
                        /* The next request is in flight; its completion frees the pager. */
                        p->stopped = true;
                        p->end(p->userdata, r, error);
                        p->end = NULL;
                }
                return;
        }
        if (last)
                pager_end(p, 0, NULL);
}

static void on_response(HttpClient *c, int r, HttpResponse *resp, void *userdata) {
        Pager *p = userdata;
        GazelleClient *g = p->g;
        (void) c;
        if (p->token_gen == g->token_gen && g->inflight > 0)
                g->inflight--;
        handle_response(p, r, resp);
        wake_parked(g);
}

int gazelle_paginate(GazelleClient *g, const char *query, const char *field, cJSON *variables,
                     GazellePageFunc page, GazelleEndFunc end, void *userdata) {
        Pager *p = calloc(1, sizeof *p);
        char error[GAZELLE_ERROR_MAX];
        if (!p)
                abort();
        *p = (Pager) { .g = g, .query = xstrdup(query), .field = xstrdup(field),
                       .variables = variables ?: cJSON_CreateObject(), .page = page, .end = end,
                       .userdata = userdata };
        if (!cJSON_GetObjectItemCaseSensitive(p->variables, "first"))
                cJSON_AddNumberToObject(p->variables, "first", GAZELLE_PAGE_SIZE);
        int r = pager_submit(p, error, sizeof error);
        if (r < 0)
                pager_end(p, r, error);
        return 0;
}

int gazelle_run(GazelleClient *g) {
        for (;;) {
                int r = http_run(g->http);
                if (!g->parked)
                        return r;
                /* Cannot happen (a request parks only while another carrying its token is out),
                 * but every pagination must end: nothing is out any more, judge them now. */
                g->inflight = 0;
                wake_parked(g);
        }
}

/* ---- the authorization commands (gazelle-scheduler auth) ---- */

bool gazelle_uses_api_key(const GazelleClient *g) {
        assert(g);
        return g->api_key;
}

usec_t gazelle_access_expires_at(const GazelleClient *g) {
        assert(g);
        return g->expires_at;
}

int gazelle_exchange_code(GazelleClient *g, const char *code, char *error, size_t error_size) {
        assert(g && code);
        secrets_add(g->secrets, code);
        return token_request(g, "authorization_code", "code", code, g->redirect_uri, error, error_size);
}

int gazelle_import_refresh_token(GazelleClient *g, const char *refresh_token, bool *ret_rotated, char *error,
                                 size_t error_size) {
        assert(g && refresh_token && ret_rotated);
        secrets_add(g->secrets, refresh_token);
        secret_free(g->refresh_token);
        g->refresh_token = xstrdup(refresh_token);
        int r = refresh(g, error, error_size);
        *ret_rotated = r >= 0 && !streq_ptr(g->refresh_token, refresh_token);
        return r;
}
