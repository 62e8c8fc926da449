/* SPDX-License-Identifier: MIT */
/* test.h — the unit tests' whole harness: assertions that print file:line and both values and
 * exit 1, a runner that prints "ok - name" per test (TAP-like), and the meson conventions
 * (exit 77 = skip). No framework: each test file has a main() that lists its tests. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_TEST_SKIP 77

/* A failed assertion in a forked child must not run the parent's atexit handlers or flush
 * its copy of the parent's stdio buffers: test_fork() marks the child. */
#define _test_unused_ __attribute__((unused))
static bool test_in_child _test_unused_;

static inline void test_fail_exit(void) {
        fflush(stderr);
        if (test_in_child)
                _exit(1);
        exit(1);
}

#define TEST_FAIL(fmt, ...)                                                                   \
        do {                                                                                  \
                fprintf(stderr, "%s:%d: %s: " fmt "\n", __FILE__, __LINE__, __func__, ##__VA_ARGS__); \
                test_fail_exit();                                                             \
        } while (0)

#define ASSERT(cond)                                             \
        do {                                                     \
                if (!(cond))                                     \
                        TEST_FAIL("assertion failed: %s", #cond); \
        } while (0)

/* With a printf-style explanation: ASSERTF(r == 0, "db: %s", db_error(db)). */
#define ASSERTF(cond, fmt, ...)                                                        \
        do {                                                                           \
                if (!(cond))                                                           \
                        TEST_FAIL("assertion failed: %s: " fmt, #cond, ##__VA_ARGS__); \
        } while (0)

#define ASSERT_EQ_INT(a, b)                                                                          \
        do {                                                                                         \
                intmax_t _a = (intmax_t) (a), _b = (intmax_t) (b);                                   \
                if (_a != _b)                                                                        \
                        TEST_FAIL("%s == %s: %" PRIdMAX " != %" PRIdMAX, #a, #b, _a, _b);             \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                            \
        do {                                                                                          \
                const char *_a = (a), *_b = (b);                                                      \
                if (!_a || !_b || strcmp(_a, _b) != 0)                                                \
                        TEST_FAIL("%s == %s: %s%s%s != %s%s%s", #a, #b, _a ? "\"" : "", _a ? _a : "NULL", \
                                  _a ? "\"" : "", _b ? "\"" : "", _b ? _b : "NULL", _b ? "\"" : "");  \
        } while (0)

#define ASSERT_NULL(a)                                                                    \
        do {                                                                              \
                const void *_p = (a);                                                     \
                if (_p)                                                                   \
                        TEST_FAIL("%s: expected NULL, got %p", #a, _p);                  \
        } while (0)

/* Substring: ASSERT_CONTAINS(message, "disque plein"). */
#define ASSERT_CONTAINS(hay, needle)                                                              \
        do {                                                                                      \
                const char *_h = (hay), *_n = (needle);                                           \
                if (!_h || !strstr(_h, _n))                                                       \
                        TEST_FAIL("%s does not contain \"%s\": %s", #hay, _n, _h ? _h : "NULL"); \
        } while (0)

/* r >= 0, else prints r and strerror(-r). */
#define ASSERT_OK(r)                                                                                   \
        do {                                                                                           \
                intmax_t _r = (intmax_t) (r);                                                          \
                if (_r < 0)                                                                            \
                        TEST_FAIL("%s failed: %" PRIdMAX " (%s)", #r, _r, strerror((int) -_r));        \
        } while (0)

/* Same with context, e.g. the engine's message: ASSERT_OKF(r, "%s", db_error(db)). */
#define ASSERT_OKF(r, fmt, ...)                                                                        \
        do {                                                                                           \
                intmax_t _r = (intmax_t) (r);                                                          \
                if (_r < 0)                                                                            \
                        TEST_FAIL("%s failed: %" PRIdMAX " (%s): " fmt, #r, _r, strerror((int) -_r),   \
                                  ##__VA_ARGS__);                                                      \
        } while (0)

/* A negative errno expected: ASSERT_ERRNO(parse(...), -EINVAL). */
#define ASSERT_ERRNO(r, expected)                                                                   \
        do {                                                                                        \
                intmax_t _r = (intmax_t) (r), _e = (intmax_t) (expected);                           \
                if (_r != _e)                                                                       \
                        TEST_FAIL("%s: expected %" PRIdMAX " (%s), got %" PRIdMAX " (%s)", #r, _e,    \
                                  strerror((int) -_e), _r, _r < 0 ? strerror((int) -_r) : "no error"); \
        } while (0)

/* The whole test program is skipped: one line saying why, exit 77. */
_test_unused_ __attribute__((format(printf, 1, 2), noreturn)) static void test_skip_all(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("SKIP: ");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        exit(EXIT_TEST_SKIP);
}

/* One part is skipped, the others still run. */
_test_unused_ __attribute__((format(printf, 2, 3))) static void test_skip_part(const char *name, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("ok - %s # SKIP ", name);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
}

/* fork() with stdio flushed first, and the child marked so a failing assertion _exit()s. */
_test_unused_ static pid_t test_fork(void) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                TEST_FAIL("fork: %s", strerror(errno));
        if (pid == 0)
                test_in_child = true;
        return pid;
}

/* A fresh private directory under $TMPDIR (or /tmp); the caller frees the string. */
_test_unused_ static char *test_mkdtemp(const char *what) {
        const char *tmp = getenv("TMPDIR");
        char *p = NULL;
        if (asprintf(&p, "%s/gazelle-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what) < 0)
                TEST_FAIL("out of memory");
        if (!mkdtemp(p))
                TEST_FAIL("mkdtemp %s: %s", p, strerror(errno));
        return p;
}

static int test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        (void) remove(path);
        return 0;
}

/* rm -rf, best effort (tests clean up after themselves; a leftover is not a failure). */
_test_unused_ static void test_rm_rf(const char *path) {
        if (path)
                (void) nftw(path, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

typedef void (*TestFunc)(void);
typedef struct TestCase {
        const char *name;
        TestFunc func;
} TestCase;

#define TEST(name) static void test_##name(void)
#define TEST_CASE(name) { #name, test_##name }

/* Runs every case in order, or only those named on the command line. */
_test_unused_ static int test_run_all(const TestCase *cases, size_t n, int argc, char **argv) {
        size_t ran = 0;
        for (size_t i = 0; i < n; i++) {
                bool wanted = argc <= 1;
                for (int a = 1; a < argc; a++)
                        if (strcmp(argv[a], cases[i].name) == 0)
                                wanted = true;
                if (!wanted)
                        continue;
                cases[i].func();
                printf("ok - %s\n", cases[i].name);
                fflush(stdout);
                ran++;
        }
        if (ran == 0) {
                fprintf(stderr, "no test matched\n");
                return 1;
        }
        printf("1..%zu\n", ran);
        return 0;
}

#define TEST_MAIN(cases, argc, argv) test_run_all((cases), sizeof(cases) / sizeof((cases)[0]), (argc), (argv))
