/* SPDX-License-Identifier: MIT */
/* google.c — the Google side of the report: a service-account key (libcrypto), the OAuth 2.0
 * JWT bearer flow (RFC 7523) with a cached token, and Sheets v4 writes sized to the data. The
 * spreadsheet is only touched once everything that can fail without touching it (key, token,
 * spreadsheets.get, reading the CSV files) has succeeded. */
#include "google.h"

#include "redact.h"
#include "utf8.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "http.h"
#include "csv.h"
#include "util.h"

struct GoogleKey {
        char *client_email;
        EVP_PKEY *pkey;
};

struct GoogleSheets {
        GoogleKey *key;
        HttpClient *http;
        char *token_url;
        char *api_url;
        char *spreadsheet_id;
        char *token;          /* secret */
        usec_t token_expires; /* realtime */
        Secrets *secrets;     /* where the signed JWT and the access token are registered (may be NULL) */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);

static void response_clear(HttpResponse *r) {
        http_response_clear(r);
}

/* ---- Key and JWT ---------------------------------------------------------------------------- */

GoogleKey *google_key_free(GoogleKey *k) {
        if (!k)
                return NULL;
        free(k->client_email);
        EVP_PKEY_free(k->pkey);
        free(k);
        return NULL;
}

const char *google_key_email(const GoogleKey *k) {
        return k->client_email;
}

static int fail(char *error, size_t size, int r, const char *fmt, ...) _printf_(4, 5);
static int fail(char *error, size_t size, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(error, size, fmt, ap);
        va_end(ap);
        return r;
}

int google_key_parse(const char *json, GoogleKey **ret, char *error, size_t error_size) {
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_Parse(json);
        if (!cJSON_IsObject(root))
                return fail(error, error_size, -EINVAL, "ce n'est pas un fichier JSON de clé de compte de service");

        const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
        const cJSON *email = cJSON_GetObjectItemCaseSensitive(root, "client_email");
        cJSON *pem = cJSON_GetObjectItemCaseSensitive(root, "private_key");
        int r = 0;
        if (cJSON_IsString(type) && !streq(type->valuestring, "service_account"))
                r = fail(error, error_size, -EINVAL, "type \"%.40s\" : une clé de compte de service (service_account) est attendue",
                         type->valuestring);
        else if (!cJSON_IsString(email) || isempty(email->valuestring))
                r = fail(error, error_size, -EINVAL, "champ client_email absent");
        else if (!cJSON_IsString(pem) || isempty(pem->valuestring))
                r = fail(error, error_size, -EINVAL, "champ private_key absent");
        if (r < 0) {
                if (cJSON_IsString(pem))
                        secret_erase(pem->valuestring);
                return r;
        }

        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem->valuestring, -1);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) "") : NULL;
        secret_erase(pem->valuestring);
        if (!pkey)
                return fail(error, error_size, -EINVAL, "private_key n'est pas une clé privée PEM lisible");
        if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA)
                return fail(error, error_size, -EINVAL, "private_key n'est pas une clé RSA (RS256 l'exige)");

        GoogleKey *k = xmalloc(sizeof *k);
        k->client_email = xstrdup(email->valuestring);
        k->pkey = TAKE_PTR(pkey);
        *ret = k;
        return 0;
}

char *base64url_encode(const void *data, size_t n) {
        char *out = xmalloc(4 * ((n + 2) / 3) + 1);
        int len = EVP_EncodeBlock((unsigned char *) out, data, (int) n);
        while (len > 0 && out[len - 1] == '=')
                len--;
        out[len] = 0;
        for (char *p = out; *p; p++)
                *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        return out;
}

int google_jwt_sign(const GoogleKey *k, const char *aud, const char *scope, usec_t now, char **ret) {
        static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
        _cleanup_(cJSON_Deletep) cJSON *claims = cJSON_CreateObject();
        double iat = (double) (now / USEC_PER_SEC);
        cJSON_AddStringToObject(claims, "iss", k->client_email);
        cJSON_AddStringToObject(claims, "scope", scope);
        cJSON_AddStringToObject(claims, "aud", aud);
        cJSON_AddNumberToObject(claims, "iat", iat);
        cJSON_AddNumberToObject(claims, "exp", iat + GOOGLE_JWT_LIFETIME_SEC);
        _cleanup_free_ char *claims_json = cJSON_PrintUnformatted(claims);
        if (!claims_json)
                return -ENOMEM;

        _cleanup_free_ char *h = base64url_encode(header, strlen(header));
        _cleanup_free_ char *c = base64url_encode(claims_json, strlen(claims_json));
        _cleanup_free_ char *input = xasprintf("%s.%s", h, c);

        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t siglen = 0;
        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
            EVP_DigestSign(md, NULL, &siglen, (const unsigned char *) input, strlen(input)) != 1)
                return -EIO;
        _cleanup_free_ unsigned char *sig = xmalloc(siglen);
        if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *) input, strlen(input)) != 1)
                return -EIO;
        _cleanup_free_ char *s = base64url_encode(sig, siglen);
        *ret = xasprintf("%s.%s", input, s);
        return 0;
}

/* ---- Client and token ------------------------------------------------------------------------ */

static void trim_slash(char *s) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
                s[--n] = 0;
}

int google_sheets_new(GoogleKey **key, const char *token_url, const char *api_url, const char *spreadsheet_id,
                      const volatile sig_atomic_t *cancelled, GoogleSheets **ret) {
        /* Google's truncated exponential backoff: 1, 2, 4 … s plus jitter, capped at 32 s. */
        HttpPolicy p;
        http_policy_default(&p);
        p.max_attempts = 8;
        p.backoff_base_usec = USEC_PER_SEC;
        p.backoff_max_usec = 32 * USEC_PER_SEC;
        p.budget_usec = 10 * 60 * USEC_PER_SEC;

        HttpClient *http = NULL;
        int r = http_client_new(&p, 1, &http);
        if (r < 0)
                return r;
        http_client_set_cancel(http, cancelled);

        GoogleSheets *g = xmalloc(sizeof *g);
        *g = (GoogleSheets) {
                .key = TAKE_PTR(*key),
                .http = http,
                .token_url = xstrdup(token_url),
                .api_url = xstrdup(api_url),
                .spreadsheet_id = http_escape(spreadsheet_id),
        };
        trim_slash(g->api_url);
        *ret = g;
        return 0;
}

void google_sheets_set_secrets(GoogleSheets *g, Secrets *secrets) {
        g->secrets = secrets;
}

GoogleSheets *google_sheets_free(GoogleSheets *g) {
        if (!g)
                return NULL;
        google_key_free(g->key);
        http_client_free(g->http);
        free(g->token_url);
        free(g->api_url);
        free(g->spreadsheet_id);
        secret_free(g->token);
        free(g);
        return NULL;
}

void google_sheets_counters(const GoogleSheets *g, unsigned *requests, unsigned *retries) {
        http_client_counters(g->http, requests, retries);
}

/* The server's own words (error_description, error.message), bounded; never our request. */
static void server_reason(const HttpResponse *resp, char *buf, size_t size) {
        _cleanup_(cJSON_Deletep) cJSON *j = resp->body ? cJSON_Parse(resp->body) : NULL;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
        const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
        char a[64], b[201];
        /* Cut on characters, and marked cut (redact.h masks a cut secret's start there). */
        if (cJSON_IsString(m))
                snprintf(buf, size, "%s", utf8_excerpt(b, sizeof b, m->valuestring, 200));
        else if (cJSON_IsString(e) && cJSON_IsString(d))
                snprintf(buf, size, "%s : %s", utf8_excerpt(a, sizeof a, e->valuestring, 60),
                         utf8_excerpt(b, sizeof b, d->valuestring, 200));
        else if (cJSON_IsString(e))
                snprintf(buf, size, "%s", utf8_excerpt(b, sizeof b, e->valuestring, 200));
        else
                utf8_excerpt(buf, size, resp->error, 300);
}

int google_sheets_token(GoogleSheets *g, const char **ret, char *error, size_t error_size) {
        usec_t now = now_realtime();
        if (g->token && now + GOOGLE_TOKEN_MARGIN_SEC * USEC_PER_SEC < g->token_expires) {
                *ret = g->token;
                return 0;
        }
        _cleanup_(secret_freep) char *jwt = NULL;
        int r = google_jwt_sign(g->key, g->token_url, GOOGLE_SHEETS_SCOPE, now, &jwt);
        if (r < 0)
                return fail(error, error_size, r, "signature du jeton JWT impossible (libcrypto)");
        secrets_add(g->secrets, jwt); /* a bearer credential for an hour: an echoing server must not show it */
        _cleanup_(secret_freep) char *body = xasprintf(
                "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
        static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded",
                                               "Accept: application/json", NULL };
        _cleanup_(response_clear) HttpResponse resp = {};
        r = http_perform(g->http, &(HttpRequest) { .method = "POST", .url = g->token_url, .headers = headers,
                                                   .body = body, .body_len = strlen(body) },
                         &resp);
        if (r < 0) {
                char why[320];
                server_reason(&resp, why, sizeof why);
                return fail(error, error_size, r, "Google refuse le compte de service %s (%s)", g->key->client_email, why);
        }
        _cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(resp.body);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
        if (!cJSON_IsString(tok) || isempty(tok->valuestring)) {
                if (resp.body)
                        secret_erase(resp.body);
                return fail(error, error_size, -EBADMSG, "réponse du serveur de jetons Google sans access_token");
        }
        secret_free(g->token);
        g->token = xstrdup(tok->valuestring);
        secrets_add(g->secrets, g->token);
        secret_erase(tok->valuestring);
        secret_erase(resp.body);
        g->token_expires = now + (usec_t) (cJSON_IsNumber(exp) && exp->valuedouble > 0 ? exp->valuedouble : 3600) *
                                         USEC_PER_SEC;
        *ret = g->token;
        return 0;
}

/* ---- Sheets calls ------------------------------------------------------------------------------ */

/* One Sheets call with the bearer token; a French reason for the failures people can fix. */
static int sheets_call(GoogleSheets *g, const char *method, const char *url, const char *body, size_t body_len,
                       cJSON **ret, char *error, size_t error_size) {
        const char *token;
        int r = google_sheets_token(g, &token, error, error_size);
        if (r < 0)
                return r;
        _cleanup_(secret_freep) char *auth = xasprintf("Authorization: Bearer %s", token);
        const char *headers[] = { auth, "Content-Type: application/json; charset=utf-8", "Accept: application/json",
                                  NULL };
        _cleanup_(response_clear) HttpResponse resp = {};
        r = http_perform(g->http, &(HttpRequest) { .method = method, .url = url, .headers = headers, .body = body,
                                                   .body_len = body_len },
                         &resp);
        if (r < 0) {
                _cleanup_free_ char *id = xstrdup(g->spreadsheet_id);
                char why[320];
                server_reason(&resp, why, sizeof why);
                if (resp.status == 403 && resp.body &&
                    (strstr(resp.body, "SERVICE_DISABLED") || strstr(resp.body, "has not been used")))
                        return fail(error, error_size, -EACCES,
                                    "l'API Google Sheets n'est pas activée pour le projet du compte de service %s (%s)",
                                    g->key->client_email, why);
                if (resp.status == 403)
                        return fail(error, error_size, -EACCES,
                                    "le classeur %s n'est pas partagé avec le compte de service %s : partagez-le "
                                    "avec cette adresse (droit Éditeur) — Google répond 403 (%s)",
                                    id, g->key->client_email, why);
                if (resp.status == 404)
                        return fail(error, error_size, -ENOENT, "le classeur %s n'existe pas (Google répond 404)", id);
                if (resp.status == 429 || resp.status >= 500 || resp.status == 0)
                        return fail(error, error_size, r, "Google Sheets indisponible : %s", resp.error);
                return fail(error, error_size, r, "Google Sheets refuse la requête : %s (%s)", resp.error, why);
        }
        if (ret) {
                *ret = cJSON_Parse(resp.body ? resp.body : "");
                if (!*ret)
                        return fail(error, error_size, -EBADMSG, "réponse illisible de Google Sheets (%s %s)", method,
                                    "JSON invalide");
        }
        return 0;
}

typedef struct SheetInfo {
        long id;
        bool exists;
} SheetInfo;

static int get_sheets(GoogleSheets *g, const GoogleTab *tabs, size_t n, SheetInfo *info, char *error,
                      size_t error_size) {
        _cleanup_free_ char *url = xasprintf(
                "%s/v4/spreadsheets/%s?fields=sheets.properties(sheetId,title,gridProperties(rowCount,columnCount))",
                g->api_url, g->spreadsheet_id);
        _cleanup_(cJSON_Deletep) cJSON *j = NULL;
        int r = sheets_call(g, "GET", url, NULL, 0, &j, error, error_size);
        if (r < 0)
                return r;
        const cJSON *sheet;
        cJSON_ArrayForEach(sheet, cJSON_GetObjectItemCaseSensitive(j, "sheets")) {
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(sheet, "properties");
                const cJSON *title = cJSON_GetObjectItemCaseSensitive(p, "title");
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "sheetId");
                if (!cJSON_IsString(title))
                        continue;
                for (size_t i = 0; i < n; i++)
                        if (streq(title->valuestring, tabs[i].title)) {
                                info[i].exists = true;
                                info[i].id = cJSON_IsNumber(id) ? (long) id->valuedouble : 0;
                        }
        }
        return 0;
}

static cJSON *grid(size_t rows, size_t columns) {
        cJSON *gp = cJSON_CreateObject();
        cJSON_AddNumberToObject(gp, "rowCount", (double) (rows ? rows : 1));
        cJSON_AddNumberToObject(gp, "columnCount", (double) columns);
        return gp;
}

/* One batchUpdate: missing tabs added with their final size, existing ones resized to their
 * data (cells beyond it would count against the spreadsheet's 10 million cells). */
static int shape_sheets(GoogleSheets *g, const GoogleTab *tabs, size_t n, const SheetInfo *info, char *error,
                        size_t error_size) {
        _cleanup_(cJSON_Deletep) cJSON *body = cJSON_CreateObject();
        cJSON *reqs = cJSON_AddArrayToObject(body, "requests");
        for (size_t i = 0; i < n; i++) {
                cJSON *req = cJSON_CreateObject(), *props = cJSON_CreateObject();
                if (info[i].exists) {
                        cJSON *u = cJSON_AddObjectToObject(req, "updateSheetProperties");
                        cJSON_AddNumberToObject(props, "sheetId", (double) info[i].id);
                        cJSON_AddItemToObject(props, "gridProperties", grid(tabs[i].rows, tabs[i].columns));
                        cJSON_AddItemToObject(u, "properties", props);
                        cJSON_AddStringToObject(u, "fields", "gridProperties(rowCount,columnCount)");
                } else {
                        cJSON *a = cJSON_AddObjectToObject(req, "addSheet");
                        cJSON_AddStringToObject(props, "title", tabs[i].title);
                        cJSON_AddItemToObject(props, "gridProperties", grid(tabs[i].rows, tabs[i].columns));
                        cJSON_AddItemToObject(a, "properties", props);
                }
                cJSON_AddItemToArray(reqs, req);
        }
        _cleanup_free_ char *json = cJSON_PrintUnformatted(body);
        _cleanup_free_ char *url = xasprintf("%s/v4/spreadsheets/%s:batchUpdate", g->api_url, g->spreadsheet_id);
        return sheets_call(g, "POST", url, json, strlen(json), NULL, error, error_size);
}

/* 'Vincent d''Indy' — A1 notation quotes a sheet name and doubles its quotes. */
static char *a1_sheet(const char *title) {
        char *s = xmalloc(2 * strlen(title) + 3), *o = s;
        *o++ = '\'';
        for (const char *p = title; *p; p++) {
                if (*p == '\'')
                        *o++ = '\'';
                *o++ = *p;
        }
        *o++ = '\'';
        *o = 0;
        return s;
}

static int clear_sheets(GoogleSheets *g, const GoogleTab *tabs, size_t n, char *error, size_t error_size) {
        _cleanup_(cJSON_Deletep) cJSON *body = cJSON_CreateObject();
        cJSON *ranges = cJSON_AddArrayToObject(body, "ranges");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *r = a1_sheet(tabs[i].title);
                cJSON_AddItemToArray(ranges, cJSON_CreateString(r));
        }
        _cleanup_free_ char *json = cJSON_PrintUnformatted(body);
        _cleanup_free_ char *url = xasprintf("%s/v4/spreadsheets/%s/values:batchClear", g->api_url, g->spreadsheet_id);
        return sheets_call(g, "POST", url, json, strlen(json), NULL, error, error_size);
}

static void out_json_string(Buf *o, const char *s) {
        buf_add(o, "\"", 1);
        const char *run = s;
        for (const char *p = s;; p++) {
                unsigned char c = (unsigned char) *p;
                if (c != 0 && c != '"' && c != '\\' && c >= 0x20)
                        continue;
                buf_add(o, run, (size_t) (p - run));
                if (c == 0)
                        break;
                char esc[8];
                if (c == '"' || c == '\\')
                        snprintf(esc, sizeof esc, "\\%c", c);
                else
                        snprintf(esc, sizeof esc, "\\u%04x", c);
                buf_puts(o, esc);
                run = p + 1;
        }
        buf_add(o, "\"", 1);
}

typedef struct Writer {
        GoogleSheets *g;
        char *url;
        Buf body; /* the growing request body */
        bool in_range;
        unsigned chunks;
} Writer;

static void writer_begin_body(Writer *w) {
        w->body.len = 0;
        buf_puts(&w->body, "{\"valueInputOption\":\"RAW\",\"data\":[");
        w->in_range = false;
}

static void writer_begin_range(Writer *w, const char *title, size_t row) {
        _cleanup_free_ char *sheet = a1_sheet(title);
        _cleanup_free_ char *range = xasprintf("%s!A%zu", sheet, row);
        if (w->body.data[w->body.len - 1] == '}')
                buf_puts(&w->body, ",");
        buf_puts(&w->body, "{\"range\":");
        out_json_string(&w->body, range);
        buf_puts(&w->body, ",\"majorDimension\":\"ROWS\",\"values\":[");
        w->in_range = true;
}

static void writer_end_range(Writer *w) {
        if (w->in_range)
                buf_puts(&w->body, "]}");
        w->in_range = false;
}

static int writer_send(Writer *w, char *error, size_t error_size) {
        writer_end_range(w);
        if (w->body.data[w->body.len - 1] == '[') /* nothing in it */
                return 0;
        buf_puts(&w->body, "]}");
        w->chunks++;
        int r = sheets_call(w->g, "POST", w->url, w->body.data, w->body.len, NULL, error, error_size);
        writer_begin_body(w);
        return r;
}

static int write_tab(Writer *w, const GoogleTab *tab, char *error, size_t error_size) {
        _cleanup_fclose_ FILE *f = fopen(tab->csv_path, "re");
        if (!f)
                return fail(error, error_size, -errno, "lecture de %s : %s", tab->csv_path, strerror(errno));
        unsigned char bom[3];
        if (fread(bom, 1, 3, f) != 3 || memcmp(bom, "\xEF\xBB\xBF", 3) != 0)
                rewind(f);

        size_t row = 0;
        bool first_in_range = true;
        for (;;) {
                char **fields = NULL;
                size_t nf = 0;
                int r = csv_read_record(f, &fields, &nf);
                if (r < 0)
                        return fail(error, error_size, r, "fichier CSV %s illisible", tab->csv_path);
                if (r == 0)
                        break;
                if (!w->in_range) {
                        writer_begin_range(w, tab->title, row + 1);
                        first_in_range = true;
                }
                if (!first_in_range)
                        buf_puts(&w->body, ",");
                first_in_range = false;
                buf_puts(&w->body, "[");
                for (size_t i = 0; i < nf; i++) {
                        if (i)
                                buf_puts(&w->body, ",");
                        out_json_string(&w->body, fields[i]);
                }
                buf_puts(&w->body, "]");
                csv_record_free(fields);
                row++;
                if (w->body.len >= GOOGLE_CHUNK_BYTES && (r = writer_send(w, error, error_size)) < 0)
                        return r;
        }
        writer_end_range(w);
        return 0;
}

int google_sheets_publish(GoogleSheets *g, const GoogleTab *tabs, size_t n, GoogleWriteState *state, char *error,
                          size_t error_size) {
        *state = GOOGLE_WRITE_NOT_STARTED;
        /* Every file must be readable before the spreadsheet is touched. */
        for (size_t i = 0; i < n; i++)
                if (access(tabs[i].csv_path, R_OK) < 0)
                        return fail(error, error_size, -errno, "lecture de %s : %s", tabs[i].csv_path, strerror(errno));

        _cleanup_free_ SheetInfo *info = calloc(n, sizeof(SheetInfo));
        if (!info)
                abort();
        int r = get_sheets(g, tabs, n, info, error, error_size);
        if (r < 0)
                return r;

        *state = GOOGLE_WRITE_STARTED;
        if ((r = shape_sheets(g, tabs, n, info, error, error_size)) < 0 ||
            (r = clear_sheets(g, tabs, n, error, error_size)) < 0)
                return r;

        Writer w = { .g = g };
        w.url = xasprintf("%s/v4/spreadsheets/%s/values:batchUpdate", g->api_url, g->spreadsheet_id);
        writer_begin_body(&w);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = write_tab(&w, &tabs[i], error, error_size);
        if (r >= 0)
                r = writer_send(&w, error, error_size);
        free(w.url);
        free(w.body.data);
        if (r >= 0)
                *state = GOOGLE_WRITE_DONE;
        return r;
}
