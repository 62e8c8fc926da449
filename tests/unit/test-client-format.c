/* SPDX-License-Identifier: MIT */
/* test-client-format.c — the text helpers behind `gazelle-scheduler logs` and `status`:
 * durations, ages, terminal widths (emoji, wide characters, selectors) and cutting a cell with
 * "…" without breaking a character or the line. */
#include "test.h"

#include "client.h"
#include "util.h"

#define S(x) ((usec_t) (x) * USEC_PER_SEC)

TEST(duration) {
        char buf[DURATION_MAX];
        ASSERT_STREQ(format_duration(-1, buf), "—");
        ASSERT_STREQ(format_duration(0, buf), "0s");
        ASSERT_STREQ(format_duration(42, buf), "42s");
        ASSERT_STREQ(format_duration(59, buf), "59s");
        ASSERT_STREQ(format_duration(60, buf), "1m 00s");
        ASSERT_STREQ(format_duration(65, buf), "1m 05s");
        ASSERT_STREQ(format_duration(192, buf), "3m 12s");
        ASSERT_STREQ(format_duration(3599, buf), "59m 59s");
        ASSERT_STREQ(format_duration(3720, buf), "1h 02m");
        ASSERT_STREQ(format_duration(26 * 3600 + 5 * 60 + 59, buf), "26h 05m");
}

TEST(age) {
        char buf[AGE_MAX];
        ASSERT_STREQ(format_age(0, buf), "0 s");
        ASSERT_STREQ(format_age(S(42), buf), "42 s");
        ASSERT_STREQ(format_age(S(12 * 60 + 59), buf), "12 min");
        ASSERT_STREQ(format_age(S(3 * 3600), buf), "3 h");
        ASSERT_STREQ(format_age(S(3 * 3600 + 12 * 60 + 5), buf), "3 h 12 min");
        ASSERT_STREQ(format_age(S(27 * 3600 + 3 * 60), buf), "27 h 3 min");
        ASSERT_STREQ(format_age(S(2 * 86400), buf), "2 j");
        ASSERT_STREQ(format_age(S(2 * 86400 + 4 * 3600 + 59), buf), "2 j 4 h");
}

TEST(width) {
        ASSERT_EQ_INT(text_width(NULL), 0);
        ASSERT_EQ_INT(text_width(""), 0);
        ASSERT_EQ_INT(text_width("abc"), 3);
        ASSERT_EQ_INT(text_width("Tâche"), 5);
        ASSERT_EQ_INT(text_width("e\xcc\x81"), 1);                 /* e + combining acute */
        ASSERT_EQ_INT(text_width("✅ Succès"), 9);
        ASSERT_EQ_INT(text_width("❌ Erreur"), 9);
        ASSERT_EQ_INT(text_width("⏳ En cours"), 11);
        ASSERT_EQ_INT(text_width("⚠️ Avertissement"), 16);         /* U+26A0 U+FE0F: wide */
        ASSERT_EQ_INT(text_width("⏭️ Ignoré"), 9);
        ASSERT_EQ_INT(text_width("⚠ x"), 3);                       /* no selector: text style */
        ASSERT_EQ_INT(text_width("⏰ Auto"), 7);
        ASSERT_EQ_INT(text_width("👤 Manuel"), 9);
        ASSERT_EQ_INT(text_width("日本語"), 6);
        ASSERT_EQ_INT(text_width("👨\u200d👩\u200d👧"), 2);        /* one ZWJ sequence */
        ASSERT_EQ_INT(text_width("a\xff" "b"), 3);                 /* invalid byte: one cell */
        ASSERT_EQ_INT(text_width("\xc0\xaf"), 2);                  /* overlong '/': two bad bytes */
        ASSERT_EQ_INT(text_width("a\nb\tc"), 5);
}

static void check_fit(const char *in, size_t width, const char *expected) {
        _cleanup_free_ char *out = text_fit(in, width);
        ASSERT_STREQ(out, expected);
        ASSERTF(text_width(out) <= width, "\"%s\" is %zu cells, more than %zu", out, text_width(out), width);
}

TEST(fit) {
        check_fit("abc", 3, "abc");
        check_fit("abc", 10, "abc");
        check_fit("abc", 2, "a…");
        check_fit("abc", 1, "…");
        check_fit("abc", 0, "");
        check_fit("Sauvegarde créée", 11, "Sauvegarde…");
        check_fit("日本語", 4, "日…");
        check_fit("日本語", 5, "日本…");
        check_fit("⚠️⚠️⚠️", 5, "⚠️⚠️…");                            /* selectors stay with their char */
        check_fit("⚠️⚠️⚠️", 4, "⚠️…");
        check_fit("e\xcc\x81" "e\xcc\x81" "e", 2, "e\xcc\x81…");     /* marks stay too */
        check_fit("ligne 1\nligne 2\r\tfin", 100, "ligne 1 ligne 2  fin");
        check_fit("a\xff" "b", 10, "a\xef\xbf\xbd" "b");
        check_fit("a\xe2\x80\xa8" "b", 10, "a b");                   /* U+2028 breaks lines */
        check_fit("abc\xe2\x80", 10, "abc\xef\xbf\xbd\xef\xbf\xbd"); /* truncated sequence */
        check_fit(NULL, 5, "");
}

TEST(labels) {
        ASSERT_STREQ(status_label("success"), "✅ Succès");
        ASSERT_STREQ(status_label("error"), "❌ Erreur");
        ASSERT_STREQ(status_label("running"), "⏳ En cours");
        ASSERT_STREQ(status_label("skipped"), "⏭️ Ignoré");
        ASSERT_STREQ(status_label("warning"), "⚠️ Avertissement");
        ASSERT_STREQ(status_label("bizarre"), "bizarre");
        ASSERT_STREQ(status_label(NULL), "—");

        struct {
                const char *by, *user, *caller, *expected;
        } cases[] = {
                { "scheduler", NULL, NULL, "⏰ Auto" },
                { "scheduler", "gazelle", NULL, "⏰ Auto" },
                { "manual", "allan@piano-tek.com", NULL, "👤 Manuel (allan@piano-tek.com)" },
                /* The claimed address is a note beside the account that really asked. */
                { "manual", "Nick", "alice", "👤 Manuel (Nick, par alice)" },
                { "manual", NULL, NULL, "👤 Manuel" },
                { "api", "root", NULL, "🔌 API (root)" },
                { "api", "root", "root", "🔌 API (root)" },
                { "api", "", NULL, "🔌 API" },
                { "cli", "root", NULL, "💻 CLI" },
                /* $USER is a claim: the CLI shows the account that ran it. */
                { "cli", "root", "bob", "💻 CLI (bob)" },
                { NULL, NULL, NULL, "—" },
                { "other", NULL, NULL, "other" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *label = trigger_label(cases[i].by, cases[i].user, cases[i].caller);
                ASSERT_STREQ(label, cases[i].expected);
        }
}

int main(int argc, char **argv) {
        static const TestCase cases[] = {
                TEST_CASE(duration), TEST_CASE(age), TEST_CASE(width), TEST_CASE(fit), TEST_CASE(labels),
        };
        return TEST_MAIN(cases, argc, argv);
}
