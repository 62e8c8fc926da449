/* SPDX-License-Identifier: MIT */
/* test-redact.c — the one redaction step (redact.h) on the texts that leaked secrets (libpq's
 * quoted URI, a token endpoint echoing its request body, an SMTP URL), and the UTF-8 cut
 * (utf8.h) at every byte of multi-byte characters. */
#include "test.h"

#include "db.h"
#include "redact.h"
#include "utf8.h"

static void assert_no(const char *text, const char *secret) {
        if (strstr(text, secret))
                TEST_FAIL("\"%s\" still in: %s", secret, text);
}

TEST(libpq_malformed_uri) {
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        const char *url = "postgresql://postgres:Pa55-w0rd%40x@[::1";
        secrets_add_url(s, url);
        /* libpq's own wording, quoting the URI whole. */
        _cleanup_free_ char *t = redact(s, "missing \"]\" in IPv6 host address in URI: "
                                           "\"postgresql://postgres:Pa55-w0rd%40x@[::1\"");
        assert_no(t, "Pa55-w0rd");
        /* Without any registry: the URL's password part is masked anyway. */
        _cleanup_free_ char *u = redact(NULL, "URI: \"postgresql://postgres:Pa55-w0rd%40x@[::1\"");
        assert_no(u, "Pa55-w0rd");
        ASSERT_CONTAINS(u, "postgresql://postgres:" REDACT_MASK "@[::1");
        /* The decoded password, as a server might quote it. */
        _cleanup_free_ char *v = redact(s, "password authentication failed (Pa55-w0rd@x)");
        assert_no(v, "Pa55-w0rd");
}

TEST(key_value_conninfo) {
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add_url(s, "host=/tmp user=postgres password='s3cr et!' dbname=x");
        secrets_add_url(s, "host=db password=plainpass42 dbname=x");
        _cleanup_free_ char *t = redact(s, "bad: s3cr et! and plainpass42");
        assert_no(t, "s3cr et!");
        assert_no(t, "plainpass42");
}

TEST(token_endpoint_echo) {
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add(s, "cl/ient+secret=value");
        secrets_add(s, "auth code 123");
        const char *body = "grant_type=authorization_code&client_id=abc&client_secret=cl%2Fient%2Bsecret%3Dvalue"
                           "&code=auth+code+123";
        _cleanup_free_ char *t = redact(s, body);
        assert_no(t, "cl%2Fient");
        assert_no(t, "auth+code+123");
        ASSERT_CONTAINS(t, "client_secret=" REDACT_MASK);
        /* Lower-case hex, %20 for spaces, JSON escaping. */
        _cleanup_free_ char *u = redact(s, "cl%2fient%2bsecret%3dvalue / auth%20code%20123 / \"cl\\/ient+secret=value\"");
        assert_no(u, "ient");
        assert_no(u, "code%20123");
}

TEST(url_passwords_anywhere) {
        _cleanup_free_ char *t = redact(NULL, "SMTP_URL=ftp://user:PASSWORD@host: expected smtp://… and "
                                              "https://a:b@c/x?y and smtps://u:p%40ss@mail:465");
        assert_no(t, "PASSWORD");
        assert_no(t, "p%40ss");
        ASSERT_CONTAINS(t, "ftp://user:" REDACT_MASK "@host");
        ASSERT_CONTAINS(t, "https://a:" REDACT_MASK "@c/x?y");
        /* No userinfo, a port, an email address: untouched. */
        const char *plain = "https://host:8443/path, write to admin@example.com: retry";
        _cleanup_free_ char *u = redact(NULL, plain);
        ASSERT_STREQ(u, plain);
}

TEST(longest_first_and_short_values) {
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add(s, "abcd");
        secrets_add(s, "abcdefgh");
        secrets_add(s, "ab"); /* too short to register */
        _cleanup_free_ char *t = redact(s, "x abcdefgh y abcd z ab");
        ASSERT_STREQ(t, "x " REDACT_MASK " y " REDACT_MASK " z ab");
}

TEST(cut_secret) {
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add(s, "0123456789abcdef");
        _cleanup_free_ char *a = redact(s, "HTTP 400: client_secret=0123456789a...");
        ASSERT_STREQ(a, "HTTP 400: client_secret=" REDACT_MASK "...");
        _cleanup_free_ char *b = redact(s, "body: 01234567");
        ASSERT_STREQ(b, "body: " REDACT_MASK);
        /* A short shared start in running text is no cut secret. */
        _cleanup_free_ char *c = redact(s, "0123 and 01234567 more");
        ASSERT_STREQ(c, "0123 and 01234567 more");
}

TEST(db_error_masked) {
        /* What store_open() hands up when libpq refuses a malformed URI. */
        Db db = {};
        db_set_error(&db, "PostgreSQL: invalid URI \"postgresql://postgres:hunter2hunter2@[::1\"\n");
        assert_no(db.error, "hunter2");
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add(s, "tok-ABCDEFGH");
        db_set_error(&db, "error near tok-ABCDEFGH");
        ASSERT_CONTAINS(db.error, "tok-ABCDEFGH");
        db_set_secrets(&db, s);
        assert_no(db.error, "tok-ABCDEFGH");
        _cleanup_free_ char *m = db_redact(&db, "message tok-ABCDEFGH");
        ASSERT_STREQ(m, "message " REDACT_MASK);
}

/* Every cut of every prefix of multi-byte text is valid UTF-8 and as long as it can be. */
TEST(utf8_cut_every_byte) {
        const char *texts[] = {
                "abcdé", "é", "日本語テキスト", "a😀b😀", "œuvre – « citation » ’", "x\xc3", "\xe2\x82",
        };
        for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
                for (size_t max = 0; max <= strlen(texts[k]) + 1; max++) {
                        size_t n = utf8_cut_len(texts[k], max);
                        ASSERTF(n <= max, "%s max %zu: %zu", texts[k], max, n);
                        char *p = utf8_strndup(texts[k], max);
                        if (utf8_is_valid(texts[k]) || max < strlen(texts[k]))
                                ASSERTF(utf8_is_valid(p) || !utf8_is_valid(texts[k]), "%s max %zu", texts[k], max);
                        /* Nothing more of a whole character would have fitted. */
                        if (utf8_is_valid(texts[k]) && n < strlen(texts[k]))
                                ASSERTF(max - n < 4 && ((unsigned char) texts[k][n] & 0xc0) != 0x80,
                                        "%s max %zu: %zu", texts[k], max, n);
                        free(p);
                }
        char buf[] = "01234567890123456789012345678901234567890123456789012345678901é";
        ASSERT_EQ_INT(strlen(buf), 64);
        ASSERT_STREQ(utf8_cut(buf, 63), "01234567890123456789012345678901234567890123456789012345678901");
}

TEST(utf8_make_valid) {
        char a[] = "cut \xc3 here, cut \xe2\x82 there, bad \xff byte, ok é€😀, end \xf0\x9f\x98";
        utf8_make_valid(a);
        ASSERT(utf8_is_valid(a));
        ASSERT_STREQ(a, "cut  here, cut  there, bad ? byte, ok é€😀, end ");
        char b[] = "overlong \xc0\xaf and surrogate \xed\xa0\x80";
        utf8_make_valid(b);
        ASSERT(utf8_is_valid(b));
        ASSERT(!utf8_is_valid("\xed\xa0\x80"));
        ASSERT(!utf8_is_valid("\xf4\x90\x80\x80"));
        ASSERT(utf8_is_valid("\xf4\x8f\xbf\xbf"));
}

TEST(redact_cut_bounds) {
        /* 63 ASCII bytes and then "é": a cut at 64 bytes must leave "é" out whole. */
        char text[80];
        memset(text, 'a', 63);
        strcpy(text + 63, "é");
        _cleanup_free_ char *t = redact_cut(NULL, text, 64);
        ASSERT_EQ_INT(strlen(t), 63);
        ASSERT(utf8_is_valid(t));
        /* No bound at all. */
        _cleanup_free_ char *u = redact_cut(NULL, text, SIZE_MAX);
        ASSERT_STREQ(u, text);
}

TEST(utf8_excerpt_marks_the_cut) {
        char buf[64];
        ASSERT_STREQ(utf8_excerpt(buf, sizeof buf, "court", 20), "court");
        /* 8 bytes then "é": a 10-byte excerpt keeps 7, never half of "é", and says it cut. */
        for (size_t max = 4; max <= 12; max++) {
                utf8_excerpt(buf, sizeof buf, "abcdefghé€ijk", max);
                ASSERTF(strlen(buf) <= max, "max %zu: %s", max, buf);
                ASSERTF(utf8_is_valid(buf), "max %zu", max);
                ASSERT_CONTAINS(buf, "...");
        }
        _cleanup_(secrets_freep) Secrets *s = secrets_new();
        secrets_add(s, "assertionJWTvalue");
        utf8_excerpt(buf, sizeof buf, "x=assertionJWTvalue", 14);
        _cleanup_free_ char *t = redact(s, buf);
        ASSERT_STREQ(t, "x=" REDACT_MASK "...");
}

static const TestCase cases[] = {
        TEST_CASE(libpq_malformed_uri),
        TEST_CASE(key_value_conninfo),
        TEST_CASE(token_endpoint_echo),
        TEST_CASE(url_passwords_anywhere),
        TEST_CASE(longest_first_and_short_values),
        TEST_CASE(cut_secret),
        TEST_CASE(db_error_masked),
        TEST_CASE(utf8_cut_every_byte),
        TEST_CASE(utf8_make_valid),
        TEST_CASE(redact_cut_bounds),
        TEST_CASE(utf8_excerpt_marks_the_cut),
};

int main(int argc, char **argv) {
        return TEST_MAIN(cases, argc, argv);
}
