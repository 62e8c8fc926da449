/* SPDX-License-Identifier: MIT */
/* http.c — the HTTP client behind Gazelle, Google and SendGrid: curl multi for bounded
 * concurrency, one retry policy (transport errors and 429/500/502/503/504, exponential backoff
 * with jitter, Retry-After clamped, attempts and time budget bounded), and error text that
 * names method, host and path but never a header, query string or request body. */
#include "http.h"

#include "utf8.h"

#include <curl/curl.h>
#include <errno.h>
#include <strings.h>
#include <sys/random.h>

#include "util.h"

/* The part of a server's error body quoted in a message: enough to read, short enough to log. */
#define SERVER_TEXT_MAX 200

typedef struct Transfer Transfer;

struct Transfer {
        HttpClient *client;
        Transfer *next;           /* in the ready queue or the waiting list */
        Transfer *active_prev, *active_next; /* while curl runs it */
        CURL *easy;
        char *method;
        char *url;
        char *where;              /* "POST host/path" for messages */
        char *body;
        size_t body_len;
        struct curl_slist *headers;
        char *capture_header;
        bool no_retry;
        HttpDoneFunc done;
        void *userdata;

        usec_t first_started;     /* the budget counts from here */
        usec_t due;               /* when a waiting retry may start */
        unsigned attempts;
        long retry_after_sec;     /* from the last response, or -1 */
        bool overflow;
        char *buf;
        size_t len, cap;
        char *captured;
        char curl_error[CURL_ERROR_SIZE];
};

struct HttpClient {
        CURLM *multi;
        HttpPolicy policy;
        unsigned max_concurrency;
        unsigned active;
        Transfer *active_list;
        Transfer *ready_head, *ready_tail;
        Transfer *waiting;
        unsigned requests, retries;
        const volatile sig_atomic_t *cancelled;
        bool in_callback;
        uint64_t rng;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

void http_policy_default(HttpPolicy *p) {
        *p = (HttpPolicy) {
                .max_attempts = 6,
                .budget_usec = 5 * 60 * USEC_PER_SEC,
                .connect_timeout_usec = 10 * USEC_PER_SEC,
                .attempt_timeout_usec = 120 * USEC_PER_SEC,
                .low_speed_time_sec = 30,
                .backoff_base_usec = 500 * USEC_PER_MSEC,
                .backoff_max_usec = 60 * USEC_PER_SEC,
                .max_response_bytes = 64 * 1024 * 1024,
        };
}

void http_response_clear(HttpResponse *r) {
        free(r->body);
        free(r->captured);
        *r = (HttpResponse) {};
}

int http_url_allowed(const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        int r = -EINVAL;

        if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
                return -EINVAL;
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
                if (strcasecmp(scheme, "https") == 0 || (strcasecmp(scheme, "http") == 0 && host_is_loopback(host)))
                        r = 0;
        }
        curl_free(scheme);
        curl_free(host);
        return r;
}

int smtp_url_check(const char *url, bool *ret_require_tls) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
                curl_free(scheme);
                return -EINVAL;
        }
        int r = 0;
        if (streq(scheme, "smtps"))
                *ret_require_tls = false; /* implicit TLS already */
        else if (streq(scheme, "smtp"))
                *ret_require_tls = !host_is_loopback(host);
        else
                r = -EINVAL;
        curl_free(scheme);
        curl_free(host);
        return r;
}

/* "POST host/path": what every message about this request says, with no query string (it can
 * carry a key) and no userinfo. */
static char *describe_request(const char *method, const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        char *host = NULL, *path = NULL, *port = NULL;
        char *s;

        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
                curl_url_get(u, CURLUPART_PORT, &port, 0);
                curl_url_get(u, CURLUPART_PATH, &path, 0);
                s = xasprintf("%s %s%s%s%s", method, host, port ? ":" : "", strempty(port), path ? path : "/");
        } else
                s = xasprintf("%s (URL illisible)", method);
        curl_free(host);
        curl_free(path);
        curl_free(port);
        return s;
}

char *http_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0);
        if (!e)
                abort();
        char *r = xstrdup(e);
        curl_free(e);
        return r;
}

static uint64_t next_random(HttpClient *c) {
        /* xorshift64*: jitter only needs to decorrelate clients, not to be unpredictable. */
        c->rng ^= c->rng >> 12;
        c->rng ^= c->rng << 25;
        c->rng ^= c->rng >> 27;
        return c->rng * UINT64_C(2685821657736338717);
}

int http_client_new(const HttpPolicy *policy, unsigned max_concurrency, HttpClient **ret) {
        /* Reference-counted by libcurl: paired with the cleanup in http_client_free(). */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -ENOMEM;
        HttpClient *c = xmalloc(sizeof *c);
        *c = (HttpClient) { .max_concurrency = max_concurrency < 1 ? 1 : max_concurrency };
        if (policy)
                c->policy = *policy;
        else
                http_policy_default(&c->policy);
        if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != sizeof c->rng || c->rng == 0)
                c->rng = (uint64_t) now_monotonic() | 1;
        c->multi = curl_multi_init();
        if (!c->multi) {
                free(c);
                curl_global_cleanup();
                return -ENOMEM;
        }
        /* Connections to one host are reused across pages; the bound applies per client. */
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) c->max_concurrency);
        *ret = c;
        return 0;
}

static void transfer_free(Transfer *t) {
        if (!t)
                return;
        /* Never inside the multi handle here: active_remove() took it out. */
        if (t->easy)
                curl_easy_cleanup(t->easy);
        free(t->method);
        free(t->url);
        free(t->where);
        if (t->body) {
                /* Request bodies carry client secrets and refresh tokens. */
                explicit_bzero(t->body, t->body_len);
                free(t->body);
        }
        curl_slist_free_all(t->headers);
        free(t->capture_header);
        free(t->buf);
        free(t->captured);
        free(t);
}

void http_client_set_cancel(HttpClient *c, const volatile sig_atomic_t *cancelled) {
        c->cancelled = cancelled;
}

void http_client_counters(const HttpClient *c, unsigned *ret_requests, unsigned *ret_retries) {
        if (ret_requests)
                *ret_requests = c->requests;
        if (ret_retries)
                *ret_retries = c->retries;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        size_t k = size * n;
        if (t->len + k > t->client->policy.max_response_bytes) {
                t->overflow = true;
                return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        }
        if (t->len + k + 1 > t->cap) {
                size_t cap = t->cap ? t->cap : 16384;
                while (cap < t->len + k + 1)
                        cap *= 2;
                char *b = realloc(t->buf, cap);
                if (!b)
                        return 0;
                t->buf = b;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, data, k);
        t->len += k;
        t->buf[t->len] = 0;
        return k;
}

static char *header_value(const char *line, size_t n, const char *name) {
        size_t l = strlen(name);
        if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
                return NULL;
        const char *v = line + l + 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        return strndup(v, end - v);
}

static long parse_retry_after(const char *v) {
        char *end;
        errno = 0;
        long s = strtol(v, &end, 10);
        if (!errno && end != v && *end == 0 && s >= 0)
                return s;
        /* An HTTP date: seconds from now. */
        struct tm tm = {};
        if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
                time_t when = timegm(&tm), now = time(NULL);
                return when > now ? (long) (when - now) : 0;
        }
        return -1;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        size_t k = size * n;
        _cleanup_free_ char *ra = header_value(data, k, "Retry-After");
        if (ra)
                t->retry_after_sec = parse_retry_after(ra);
        if (t->capture_header) {
                char *v = header_value(data, k, t->capture_header);
                if (v) {
                        free(t->captured);
                        t->captured = v;
                }
        }
        return k;
}

static long usec_to_msec(usec_t u) {
        return (long) (u / USEC_PER_MSEC);
}

static int transfer_setup(Transfer *t) {
        const HttpPolicy *p = &t->client->policy;
        CURL *e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        t->easy = e;
        curl_easy_setopt(e, CURLOPT_URL, t->url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, usec_to_msec(p->connect_timeout_usec));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, usec_to_msec(p->attempt_timeout_usec));
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long) p->low_speed_time_sec);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "gazelle-scheduler/" GAZELLE_VERSION);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_error);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        if (t->body) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
        }
        if (streq(t->method, "GET") && !t->body)
                curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        else if (!streq(t->method, "POST"))
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
        return 0;
}

static void ready_push(HttpClient *c, Transfer *t) {
        t->next = NULL;
        if (c->ready_tail)
                c->ready_tail->next = t;
        else
                c->ready_head = t;
        c->ready_tail = t;
}

int http_submit(HttpClient *c, const HttpRequest *req, HttpDoneFunc done, void *userdata) {
        if (!req->method || !req->url || !done)
                return -EINVAL;
        if (http_url_allowed(req->url) < 0)
                return -EINVAL;
        Transfer *t = xmalloc(sizeof *t);
        *t = (Transfer) {
                .client = c,
                .method = xstrdup(req->method),
                .url = xstrdup(req->url),
                .where = describe_request(req->method, req->url),
                .no_retry = req->no_retry,
                .done = done,
                .userdata = userdata,
                .retry_after_sec = -1,
                .capture_header = req->capture_header ? xstrdup(req->capture_header) : NULL,
        };
        if (req->body) {
                t->body = xmalloc(req->body_len + 1);
                memcpy(t->body, req->body, req->body_len);
                t->body[req->body_len] = 0;
                t->body_len = req->body_len;
        }
        /* No "Expect: 100-continue" round trip before large bodies (Sheets writes ~2 MB). */
        t->headers = curl_slist_append(NULL, "Expect:");
        for (const char *const *h = req->headers; h && *h; h++)
                t->headers = curl_slist_append(t->headers, *h);
        if (!t->headers)
                abort();
        int r = transfer_setup(t);
        if (r < 0) {
                transfer_free(t);
                return r;
        }
        ready_push(c, t);
        return 0;
}

static Transfer *ready_pop(HttpClient *c) {
        Transfer *t = c->ready_head;
        if (t) {
                c->ready_head = t->next;
                if (!c->ready_head)
                        c->ready_tail = NULL;
                t->next = NULL;
        }
        return t;
}

static void body_excerpt(const char *body, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = 0;
        if (!body)
                return;
        /* One line, printable: the text goes into a one-line French message and the journal. */
        size_t max = utf8_cut_len(body, (size < SERVER_TEXT_MAX + 1 ? size - 1 : SERVER_TEXT_MAX) - 3);
        for (const char *p = body; n < max; p++)
                buf[n++] = (unsigned char) *p < ' ' ? ' ' : *p;
        buf[n] = 0;
        /* Cut on a character boundary, and said to be cut (redact.h masks a secret's start there). */
        if (body[n])
                strcpy(buf + n, "...");
}

static void active_add(HttpClient *c, Transfer *t) {
        t->active_prev = NULL;
        t->active_next = c->active_list;
        if (c->active_list)
                c->active_list->active_prev = t;
        c->active_list = t;
        c->active++;
}

static void active_remove(HttpClient *c, Transfer *t) {
        if (t->active_prev)
                t->active_prev->active_next = t->active_next;
        else
                c->active_list = t->active_next;
        if (t->active_next)
                t->active_next->active_prev = t->active_prev;
        t->active_prev = t->active_next = NULL;
        curl_multi_remove_handle(c->multi, t->easy);
        c->active--;
}

static usec_t retry_after_clamped(const HttpClient *c, long sec) {
        usec_t ra = (usec_t) sec * USEC_PER_SEC;
        return ra > c->policy.backoff_max_usec ? c->policy.backoff_max_usec : ra;
}

static void complete(Transfer *t, int r, long status) {
        HttpClient *c = t->client;
        HttpResponse resp = {
                .status = status,
                .body = TAKE_PTR(t->buf),
                .body_len = t->len,
                .captured = TAKE_PTR(t->captured),
                .attempts = t->attempts,
                .retry_after_usec = t->retry_after_sec > 0 ? retry_after_clamped(c, t->retry_after_sec) : 0,
        };
        if (!resp.body)
                resp.body = xstrdup("");
        if (r < 0) {
                char text[SERVER_TEXT_MAX + 8];
                char tries[48] = "";
                if (t->attempts > 1)
                        snprintf(tries, sizeof tries, " (%u tentatives)", t->attempts);
                if (r == -ECANCELED)
                        snprintf(resp.error, sizeof resp.error, "%s: annulée", t->where);
                else if (r == -EFBIG)
                        snprintf(resp.error, sizeof resp.error, "%s: réponse de plus de %zu octets, refusée", t->where,
                                 c->policy.max_response_bytes);
                else if (status > 0) {
                        body_excerpt(resp.body, text, sizeof text);
                        snprintf(resp.error, sizeof resp.error, "%s: HTTP %ld%s%s%s", t->where, status, tries,
                                 *text ? ": " : "", text);
                } else
                        snprintf(resp.error, sizeof resp.error, "%s: %s%s", t->where,
                                 *t->curl_error ? t->curl_error : "échec de la connexion", tries);
        }
        c->in_callback = true;
        t->done(c, r, &resp, t->userdata);
        c->in_callback = false;
        http_response_clear(&resp);
        transfer_free(t);
}

static bool status_retryable(long s) {
        return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int curl_code_to_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
                return -EPROTO;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static bool curl_code_retryable(CURLcode cc) {
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

/* Exponential backoff with jitter (half fixed, half random), or the server's Retry-After;
 * both capped so one answer cannot park a run for hours. */
static usec_t retry_delay(HttpClient *c, const Transfer *t) {
        const HttpPolicy *p = &c->policy;
        if (t->retry_after_sec >= 0)
                return retry_after_clamped(c, t->retry_after_sec);
        usec_t d = p->backoff_base_usec;
        for (unsigned i = 1; i < t->attempts && d < p->backoff_max_usec; i++)
                d *= 2;
        if (d > p->backoff_max_usec)
                d = p->backoff_max_usec;
        return d / 2 + (d > 1 ? next_random(c) % (d / 2 + 1) : 0);
}

static void reset_attempt(Transfer *t) {
        free(t->buf);
        t->buf = NULL;
        t->len = t->cap = 0;
        free(t->captured);
        t->captured = NULL;
        t->retry_after_sec = -1;
        t->overflow = false;
        t->curl_error[0] = 0;
}

static void attempt_finished(HttpClient *c, Transfer *t, CURLcode cc) {
        long status = 0;
        active_remove(c, t);
        if (cc == CURLE_OK)
                curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);

        if (cc == CURLE_OK && status >= 200 && status < 300)
                return complete(t, 0, status);
        if (t->overflow)
                return complete(t, -EFBIG, status);

        bool retryable = cc == CURLE_OK ? status_retryable(status) : curl_code_retryable(cc);
        int r = cc == CURLE_OK ? -EBADMSG : curl_code_to_errno(cc);
        if (!retryable || t->no_retry || t->attempts >= c->policy.max_attempts)
                return complete(t, r, status);

        usec_t delay = retry_delay(c, t), now = now_monotonic();
        if (now + delay - t->first_started > c->policy.budget_usec)
                return complete(t, r, status);

        c->retries++;
        reset_attempt(t);
        t->due = now + delay;
        t->next = c->waiting;
        c->waiting = t;
}

static int start_ready(HttpClient *c) {
        while (c->active < c->max_concurrency && c->ready_head) {
                Transfer *t = ready_pop(c);
                if (t->attempts == 0)
                        t->first_started = now_monotonic();
                t->attempts++;
                c->requests++;
                CURLMcode mc = curl_multi_add_handle(c->multi, t->easy);
                if (mc != CURLM_OK) {
                        complete(t, -ENOMEM, 0);
                        continue;
                }
                active_add(c, t);
        }
        return 0;
}

static usec_t promote_due(HttpClient *c) {
        usec_t now = now_monotonic(), next = USEC_INFINITY;
        Transfer **pp = &c->waiting;
        while (*pp) {
                Transfer *t = *pp;
                if (t->due <= now) {
                        *pp = t->next;
                        ready_push(c, t);
                } else {
                        if (t->due < next)
                                next = t->due;
                        pp = &t->next;
                }
        }
        return next == USEC_INFINITY ? next : next - now;
}

static void cancel_all(HttpClient *c) {
        Transfer *t;
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)))
                ;
        while ((t = c->active_list)) {
                active_remove(c, t);
                complete(t, -ECANCELED, 0);
        }
        while ((t = ready_pop(c)))
                complete(t, -ECANCELED, 0);
        while ((t = c->waiting)) {
                c->waiting = t->next;
                complete(t, -ECANCELED, 0);
        }
}

int http_run(HttpClient *c) {
        if (c->in_callback)
                return -EBUSY;
        for (;;) {
                if (is_cancelled(c->cancelled)) {
                        cancel_all(c);
                        return -ECANCELED;
                }
                usec_t wait = promote_due(c);
                start_ready(c);
                if (c->active == 0 && !c->ready_head && !c->waiting)
                        return 0;

                int running = 0;
                CURLMcode mc = curl_multi_perform(c->multi, &running);
                if (mc != CURLM_OK)
                        return -EIO;
                CURLMsg *m;
                int left;
                while ((m = curl_multi_info_read(c->multi, &left)))
                        if (m->msg == CURLMSG_DONE) {
                                char *priv = NULL;
                                CURLcode cc = m->data.result;
                                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
                                attempt_finished(c, (Transfer *) priv, cc);
                        }
                if (c->ready_head && c->active < c->max_concurrency)
                        continue;
                /* Wake at least every 200 ms so a cancellation is seen promptly, and when the
                 * next retry is due. */
                long timeout_ms = 200;
                if (wait != USEC_INFINITY && (long) (wait / USEC_PER_MSEC) < timeout_ms)
                        timeout_ms = (long) (wait / USEC_PER_MSEC) + 1;
                curl_multi_poll(c->multi, NULL, 0, (int) timeout_ms, NULL);
        }
}

typedef struct PerformResult {
        bool done;
        int r;
        HttpResponse *resp;
} PerformResult;

static void on_perform_done(HttpClient *c, int r, HttpResponse *resp, void *userdata) {
        PerformResult *pr = userdata;
        pr->done = true;
        pr->r = r;
        /* Move the response out: it is freed after the callback returns. */
        *pr->resp = *resp;
        *resp = (HttpResponse) {};
}

int http_perform(HttpClient *c, const HttpRequest *req, HttpResponse *resp) {
        PerformResult pr = { .resp = resp };
        *resp = (HttpResponse) {};
        if (c->in_callback)
                return -EBUSY;
        int r = http_submit(c, req, on_perform_done, &pr);
        if (r < 0) {
                snprintf(resp->error, sizeof resp->error, "%s: URL refusée (https requis, http seulement vers la boucle locale)",
                         strempty(req->method));
                return r;
        }
        r = http_run(c);
        if (!pr.done)
                return r < 0 ? r : -EIO;
        return pr.r;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        Transfer *t;
        while ((t = c->active_list)) {
                active_remove(c, t);
                transfer_free(t);
        }
        while ((t = ready_pop(c)))
                transfer_free(t);
        while ((t = c->waiting)) {
                c->waiting = t->next;
                transfer_free(t);
        }
        curl_multi_cleanup(c->multi);
        free(c);
        curl_global_cleanup();
        return NULL;
}
