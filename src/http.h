/* SPDX-License-Identifier: MIT */
/* http.h — every outbound HTTP call (Gazelle, Google, SendGrid): libcurl with connect, total and
 * low-speed timeouts, TLS verification, https only (http only to loopback, for the tests),
 * retries on transport errors and 429/500/502/503/504 with exponential backoff, jitter and a
 * clamped Retry-After, within a bounded number of attempts and a total time budget. Failures
 * are named by method, host and path plus the status and the server's (truncated) error text —
 * never a header, a query string or a body we sent, so no secret can leak through them. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "timeutil.h"

#define HTTP_ERROR_MAX 512

typedef struct HttpPolicy {
        unsigned max_attempts;       /* including the first; default 6 */
        usec_t budget_usec;          /* all attempts and waits of one request; default 5 min */
        usec_t connect_timeout_usec; /* default 10 s */
        usec_t attempt_timeout_usec; /* one attempt, whole transfer; default 120 s */
        unsigned low_speed_time_sec; /* abort below 1 byte/s for this long; default 30 s */
        usec_t backoff_base_usec;    /* first wait; doubles; default 500 ms */
        usec_t backoff_max_usec;     /* cap of a wait, Retry-After included; default 60 s */
        size_t max_response_bytes;   /* larger bodies fail the request; default 64 MiB */
} HttpPolicy;

/* The defaults above. */
void http_policy_default(HttpPolicy *p);

typedef struct HttpRequest {
        const char *method;          /* "GET", "POST", "PUT", … */
        const char *url;
        const char *const *headers;  /* NULL-terminated "Name: value" list, or NULL */
        const char *body;            /* request body or NULL */
        size_t body_len;
        const char *capture_header;  /* a response header to keep (e.g. "X-Message-Id"), or NULL */
        bool no_retry;               /* one attempt only (a non-idempotent send decides itself) */
} HttpRequest;

typedef struct HttpResponse {
        long status;            /* 0 when no response was received */
        char *body;             /* NUL-terminated, owned */
        size_t body_len;
        char *captured;         /* value of capture_header, owned, or NULL */
        unsigned attempts;      /* 1 + retries */
        usec_t retry_after_usec; /* the last answer's Retry-After (clamped to backoff_max), or 0 */
        char error[HTTP_ERROR_MAX]; /* set when the call fails: "POST host/path: HTTP 403: …" */
} HttpResponse;

void http_response_clear(HttpResponse *r);

typedef struct HttpClient HttpClient;

/* max_concurrency bounds parallel transfers (≥ 1); policy NULL means defaults. */
int http_client_new(const HttpPolicy *policy, unsigned max_concurrency, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);
static inline void http_client_freep(HttpClient **c) {
        if (*c)
                http_client_free(*c);
}
/* Set before running: requests stop (fail with -ECANCELED) once *cancelled is non-zero. */
void http_client_set_cancel(HttpClient *c, const volatile sig_atomic_t *cancelled);
/* Totals since creation: requests made (every attempt) and retries among them. */
void http_client_counters(const HttpClient *c, unsigned *ret_requests, unsigned *ret_retries);

/* Blocking call with retries. Returns 0 on a 2xx; otherwise fills resp->error and returns
 * -EBADMSG for a final non-2xx status (resp->status and resp->body are set, so the caller can
 * react to 401 or 403), -ETIMEDOUT / -ECONNREFUSED / -EIO … for transport failures,
 * -EFBIG for an oversized body, -ECANCELED when cancelled, -EINVAL for a refused URL.
 * Must not be called from a completion callback of the same client. */
int http_perform(HttpClient *c, const HttpRequest *req, HttpResponse *resp);

/* Asynchronous form over curl multi: the request is copied; done() runs from http_run() with
 * the same return convention as http_perform(); resp is valid only during the callback (take
 * resp->body with TAKE_PTR to keep it). done() may submit further requests. */
typedef void (*HttpDoneFunc)(HttpClient *c, int r, HttpResponse *resp, void *userdata);
int http_submit(HttpClient *c, const HttpRequest *req, HttpDoneFunc done, void *userdata);
/* Drives every submitted request (and those their callbacks submit) to completion, at most
 * max_concurrency transfers at once. 0, or -ECANCELED when cancelled (pending requests then
 * complete with -ECANCELED). */
int http_run(HttpClient *c);

/* Checks a URL before use: https, or http to a loopback address. 0 or -EINVAL. */
int http_url_allowed(const char *url);
/* The same policy for mail (SMTP_URL): smtps:// anywhere, smtp:// with STARTTLS required
 * unless to loopback (the tests' sink), said by *ret_require_tls; -EINVAL otherwise. */
int smtp_url_check(const char *url, bool *ret_require_tls);
/* application/x-www-form-urlencoded / query escaping; owned result. */
char *http_escape(const char *s);
