/* SPDX-License-Identifier: MIT */
/* test-http.c — the HTTP layer against a loopback server with scripted faults
 * (tests/fakes/http_faults.py): retries and their bounds, Retry-After, timeouts, body cap,
 * bounded concurrency, captured headers, URL policy, and error text without query strings. */
#include <signal.h>
#include <sys/wait.h>

#include "http.h"
#include "test.h"
#include "util.h"

static pid_t server_pid;
static int server_port;

static void start_server(void) {
        int p[2];
        ASSERT(pipe(p) == 0);
        server_pid = fork();
        ASSERT(server_pid >= 0);
        if (server_pid == 0) {
                dup2(p[1], 1);
                close(p[0]);
                execlp("python3", "python3", TEST_FAKES_DIR "/http_faults.py", (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        FILE *f = fdopen(p[0], "r");
        ASSERT(f);
        ASSERT(fscanf(f, "PORT %d", &server_port) == 1);
        fclose(f);
}

static void stop_server(void) {
        if (server_pid > 0) {
                kill(server_pid, SIGTERM);
                waitpid(server_pid, NULL, 0);
        }
}

static char *url(const char *path) {
        return xasprintf("http://127.0.0.1:%d%s", server_port, path);
}

static HttpClient *client(unsigned max_attempts, usec_t base, unsigned concurrency) {
        HttpPolicy p;
        HttpClient *c;
        http_policy_default(&p);
        p.max_attempts = max_attempts;
        p.backoff_base_usec = base;
        p.backoff_max_usec = 1500 * USEC_PER_MSEC;
        p.attempt_timeout_usec = 1 * USEC_PER_SEC;
        p.max_response_bytes = 1024 * 1024;
        ASSERT_OK(http_client_new(&p, concurrency, &c));
        return c;
}

static int get(HttpClient *c, const char *path, HttpResponse *resp) {
        _cleanup_free_ char *u = url(path);
        HttpRequest req = { .method = "GET", .url = u };
        return http_perform(c, &req, resp);
}

TEST(ok) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        ASSERT_OK(get(c, "/ok", &resp));
        ASSERT_EQ_INT(resp.status, 200);
        ASSERT_STREQ(resp.body, "ok");
        ASSERT_EQ_INT(resp.attempts, 1);
        http_response_clear(&resp);
}

TEST(client_error_is_final_and_named) {
        _cleanup_(http_client_freep) HttpClient *c = client(5, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        ASSERT_ERRNO(get(c, "/status/400?api_key=SECRET123", &resp), -EBADMSG);
        ASSERT_EQ_INT(resp.status, 400);
        ASSERT_EQ_INT(resp.attempts, 1);
        _cleanup_free_ char *expect = xasprintf("GET 127.0.0.1:%d/status/400: HTTP 400: boom 400 second line", server_port);
        ASSERT_STREQ(resp.error, expect);
        ASSERT(!strstr(resp.error, "SECRET123"));
        http_response_clear(&resp);
}

TEST(server_error_retried_then_fails) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        unsigned requests, retries;
        ASSERT_ERRNO(get(c, "/status/503", &resp), -EBADMSG);
        ASSERT_EQ_INT(resp.attempts, 3);
        ASSERT_CONTAINS(resp.error, "HTTP 503 (3 tentatives): boom 503");
        http_client_counters(c, &requests, &retries);
        ASSERT_EQ_INT(requests, 3);
        ASSERT_EQ_INT(retries, 2);
        http_response_clear(&resp);
}

TEST(retry_after_honoured) {
        _cleanup_(http_client_freep) HttpClient *c = client(5, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        usec_t t0 = now_monotonic();
        ASSERT_OK(get(c, "/flaky/429/2", &resp));
        usec_t elapsed = now_monotonic() - t0;
        ASSERT_EQ_INT(resp.attempts, 3);
        ASSERT_STREQ(resp.body, "finally");
        ASSERTF(elapsed >= 2 * USEC_PER_SEC, "elapsed %llu us", (unsigned long long) elapsed);
        http_response_clear(&resp);

        /* An HTTP-date Retry-After, clamped by backoff_max (1.5 s). */
        t0 = now_monotonic();
        ASSERT_OK(get(c, "/retry-date", &resp));
        elapsed = now_monotonic() - t0;
        ASSERT_EQ_INT(resp.attempts, 2);
        ASSERTF(elapsed >= 500 * USEC_PER_MSEC && elapsed < 3 * USEC_PER_SEC, "elapsed %llu us",
                (unsigned long long) elapsed);
        http_response_clear(&resp);
}

TEST(no_retry_flag) {
        _cleanup_(http_client_freep) HttpClient *c = client(5, 10 * USEC_PER_MSEC, 2);
        _cleanup_free_ char *u = url("/status/500");
        HttpRequest req = { .method = "POST", .url = u, .body = "{}", .body_len = 2, .no_retry = true };
        HttpResponse resp;
        ASSERT_ERRNO(http_perform(c, &req, &resp), -EBADMSG);
        ASSERT_EQ_INT(resp.attempts, 1);
        http_response_clear(&resp);
}

TEST(stall_times_out) {
        _cleanup_(http_client_freep) HttpClient *c = client(2, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        usec_t t0 = now_monotonic();
        ASSERT_ERRNO(get(c, "/stall", &resp), -ETIMEDOUT);
        ASSERT(now_monotonic() - t0 < 10 * USEC_PER_SEC);
        ASSERT_EQ_INT(resp.attempts, 2);
        ASSERT_CONTAINS(resp.error, "/stall");
        http_response_clear(&resp);
}

TEST(body_cap) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        HttpResponse resp;
        ASSERT_ERRNO(get(c, "/big", &resp), -EFBIG);
        ASSERT_EQ_INT(resp.attempts, 1);
        http_response_clear(&resp);
}

typedef struct Counter {
        unsigned ok, failed;
} Counter;

static void on_done(HttpClient *c, int r, HttpResponse *resp, void *userdata) {
        Counter *n = userdata;
        if (r == 0 && streq(resp->body, "slow"))
                n->ok++;
        else
                n->failed++;
}

TEST(concurrency_is_bounded) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        _cleanup_free_ char *u = url("/slow/300");
        HttpRequest req = { .method = "GET", .url = u };
        Counter n = {};
        usec_t t0 = now_monotonic();
        for (int i = 0; i < 8; i++)
                ASSERT_OK(http_submit(c, &req, on_done, &n));
        ASSERT_OK(http_run(c));
        usec_t elapsed = now_monotonic() - t0;
        ASSERT_EQ_INT(n.ok, 8);
        ASSERT_EQ_INT(n.failed, 0);
        /* 8 requests of 300 ms, two at a time: at least 1.2 s, well under 8 × 300 ms. */
        ASSERTF(elapsed >= 1200 * USEC_PER_MSEC && elapsed < 2300 * USEC_PER_MSEC, "elapsed %llu us",
                (unsigned long long) elapsed);
        HttpResponse resp;
        ASSERT_OK(get(c, "/stats", &resp));
        ASSERT_CONTAINS(resp.body, "\"max_concurrency\": 2");
        http_response_clear(&resp);
}

TEST(captured_header) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        _cleanup_free_ char *u = url("/capture");
        HttpRequest req = { .method = "POST", .url = u, .body = "{}", .body_len = 2, .capture_header = "X-Message-Id" };
        HttpResponse resp;
        ASSERT_OK(http_perform(c, &req, &resp));
        ASSERT_EQ_INT(resp.status, 202);
        ASSERT_STREQ(resp.captured, "msg-123");
        http_response_clear(&resp);
}

TEST(url_policy) {
        ASSERT_OK(http_url_allowed("https://gazelleapp.io/graphql/private/"));
        ASSERT_OK(http_url_allowed("http://127.0.0.1:8080/x"));
        ASSERT_OK(http_url_allowed("http://localhost/x"));
        ASSERT_OK(http_url_allowed("http://[::1]:9/x"));
        ASSERT_ERRNO(http_url_allowed("http://gazelleapp.io/graphql/private/"), -EINVAL);
        ASSERT_ERRNO(http_url_allowed("ftp://127.0.0.1/x"), -EINVAL);
        ASSERT_ERRNO(http_url_allowed("not a url"), -EINVAL);

        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        HttpRequest req = { .method = "GET", .url = "http://example.com/" };
        HttpResponse resp;
        ASSERT_ERRNO(http_perform(c, &req, &resp), -EINVAL);
        ASSERT(*resp.error);
        http_response_clear(&resp);
}

TEST(connection_refused) {
        _cleanup_(http_client_freep) HttpClient *c = client(2, 10 * USEC_PER_MSEC, 2);
        /* Port 1 on loopback: nothing listens there in a test environment. */
        HttpRequest req = { .method = "GET", .url = "http://127.0.0.1:1/x" };
        HttpResponse resp;
        ASSERT_ERRNO(http_perform(c, &req, &resp), -ECONNREFUSED);
        ASSERT_EQ_INT(resp.attempts, 2);
        ASSERT_CONTAINS(resp.error, "GET 127.0.0.1:1/x: ");
        http_response_clear(&resp);
}

TEST(budget_bounds_retries) {
        HttpPolicy p;
        HttpClient *c;
        http_policy_default(&p);
        p.max_attempts = 50;
        p.backoff_base_usec = 200 * USEC_PER_MSEC;
        p.budget_usec = 700 * USEC_PER_MSEC;
        ASSERT_OK(http_client_new(&p, 1, &c));
        HttpResponse resp;
        usec_t t0 = now_monotonic();
        ASSERT_ERRNO(get(c, "/status/502", &resp), -EBADMSG);
        ASSERT(now_monotonic() - t0 < 1500 * USEC_PER_MSEC);
        ASSERT(resp.attempts >= 2 && resp.attempts < 6);
        http_response_clear(&resp);
        http_client_free(c);
}

TEST(cancellation) {
        _cleanup_(http_client_freep) HttpClient *c = client(3, 10 * USEC_PER_MSEC, 2);
        volatile sig_atomic_t flag = 1;
        http_client_set_cancel(c, &flag);
        HttpResponse resp;
        ASSERT_ERRNO(get(c, "/ok", &resp), -ECANCELED);
        http_response_clear(&resp);
}

int main(int argc, char **argv) {
        static const TestCase cases[] = {
                TEST_CASE(ok),
                TEST_CASE(client_error_is_final_and_named),
                TEST_CASE(server_error_retried_then_fails),
                TEST_CASE(retry_after_honoured),
                TEST_CASE(no_retry_flag),
                TEST_CASE(stall_times_out),
                TEST_CASE(body_cap),
                TEST_CASE(concurrency_is_bounded),
                TEST_CASE(captured_header),
                TEST_CASE(url_policy),
                TEST_CASE(connection_refused),
                TEST_CASE(budget_bounds_retries),
                TEST_CASE(cancellation),
        };
        start_server();
        atexit(stop_server);
        return TEST_MAIN(cases, argc, argv);
}
