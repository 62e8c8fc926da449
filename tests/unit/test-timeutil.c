/* SPDX-License-Identifier: MIT */
/* test-timeutil.c — ISO-8601 storage format, RFC 3339 display and the America/Montreal
 * calendar (day bounds, DST gaps and overlaps, task slots) of src/timeutil.c. */
#include <time.h>

#include "test.h"
#include "timeutil.h"

/* A UTC instant from its calendar fields (timegm: no time zone involved). */
static usec_t utc(int y, int mo, int d, int h, int mi, int s, unsigned us) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s };
        return (usec_t) timegm(&tm) * USEC_PER_SEC + us;
}

#define HOUR_USEC (UINT64_C(3600) * USEC_PER_SEC)

#define ASSERT_DATE(got, y, m, d)                                                                          \
        do {                                                                                               \
                LocalDate _g = (got);                                                                      \
                if (_g.year != (y) || _g.month != (m) || _g.day != (d))                                    \
                        TEST_FAIL("%s: %04d-%02d-%02d != %04d-%02d-%02d", #got, _g.year, _g.month, _g.day, \
                                  (y), (m), (d));                                                          \
        } while (0)

#define ASSERT_EQ_TIME(a, b)                                                                                \
        do {                                                                                                \
                usec_t _ta = (a), _tb = (b);                                                                \
                char _ba[ISO_UTC_MAX], _bb[ISO_UTC_MAX];                                                    \
                if (_ta != _tb)                                                                             \
                        TEST_FAIL("%s == %s: %s != %s", #a, #b, format_iso_utc(_ta, _ba), format_iso_utc(_tb, _bb)); \
        } while (0)

TEST(iso_format) {
        char buf[ISO_UTC_MAX];
        ASSERT_STREQ(format_iso_utc(utc(2026, 11, 24, 10, 0, 0, 123456), buf), "2026-11-24T10:00:00.123456Z");
        ASSERT_STREQ(format_iso_utc(utc(2026, 11, 24, 10, 0, 0, 0), buf), "2026-11-24T10:00:00.000000Z");
        ASSERT_STREQ(format_iso_utc(utc(2026, 1, 2, 3, 4, 5, 6), buf), "2026-01-02T03:04:05.000006Z");
        ASSERT_STREQ(format_iso_utc(0, buf), "1970-01-01T00:00:00.000000Z");
        /* Fixed width: sorts as text the way it sorts as time (what SQLite compares). */
        char a[ISO_UTC_MAX], b[ISO_UTC_MAX];
        format_iso_utc(utc(2026, 3, 8, 6, 59, 59, 999999), a);
        format_iso_utc(utc(2026, 3, 8, 7, 0, 0, 0), b);
        ASSERT(strlen(a) == strlen(b));
        ASSERT(strcmp(a, b) < 0);
}

TEST(iso_round_trip) {
        const usec_t samples[] = {
                utc(2026, 11, 24, 10, 0, 0, 123456), utc(2026, 3, 8, 7, 0, 0, 0),  utc(2026, 11, 1, 5, 59, 59, 999999),
                utc(2000, 2, 29, 23, 59, 59, 1),      utc(2038, 1, 19, 3, 14, 8, 0), utc(1970, 1, 1, 0, 0, 0, 1),
        };
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
                char buf[ISO_UTC_MAX];
                usec_t t = 0;
                ASSERT_OK(parse_iso_utc(format_iso_utc(samples[i], buf), &t));
                ASSERT_EQ_TIME(t, samples[i]);
        }
}

TEST(iso_parse_variants) {
        const usec_t base = utc(2026, 11, 24, 10, 0, 0, 0);
        static const struct {
                const char *text;
                unsigned usec;
        } ok[] = {
                { "2026-11-24T10:00:00Z", 0 },
                { "2026-11-24T10:00:00z", 0 },
                { "2026-11-24 10:00:00Z", 0 },
                { "2026-11-24T10:00:00+00", 0 },
                { "2026-11-24T10:00:00+00:00", 0 },
                { "2026-11-24T10:00:00+0000", 0 },
                { "2026-11-24T10:00:00-00:00", 0 },
                { "2026-11-24T10:00:00.123456Z", 123456 },
                { "2026-11-24 10:00:00.123456+00", 123456 }, /* PostgreSQL's timestamptz output, UTC session */
                { "2026-11-24 10:00:00+00", 0 },              /* … and without fraction */
                { "2026-11-24 10:00:00.5+00", 500000 },       /* PostgreSQL trims trailing zeros */
                { "2026-11-24T10:00:00.000001Z", 1 },
                { "2026-11-24T10:00:00.1234567Z", 123456 },   /* beyond µs: truncated */
                { "2026-11-24T05:00:00-05:00", 0 },
                { "2026-11-24T06:00:00-04", 0 },
                { "2026-11-24T15:30:00+05:30", 0 },
                { "2026-11-24T05:00:00.123456-05:00", 123456 },
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                usec_t t = 0;
                ASSERT_OKF(parse_iso_utc(ok[i].text, &t), "\"%s\"", ok[i].text);
                char got[ISO_UTC_MAX];
                ASSERTF(t == base + ok[i].usec, "\"%s\" parsed as %s", ok[i].text, format_iso_utc(t, got));
        }
        /* A leap second reads as the next second, even across a month end. */
        usec_t t;
        ASSERT_OK(parse_iso_utc("2026-12-31T23:59:60Z", &t));
        ASSERT_EQ_TIME(t, utc(2027, 1, 1, 0, 0, 0, 0));
}

TEST(iso_parse_rejects_garbage) {
        static const char *const bad[] = {
                "",
                "garbage",
                "2026-11-24",
                "2026-11-24T10:00Z",
                "2026-11-24T10:00:00",          /* no zone: ambiguous, refused */
                "2026-11-24X10:00:00Z",
                " 2026-11-24T10:00:00Z",
                "2026-11-24T10:00:00Z ",
                "2026-11-24T10:00:00Zjunk",
                "2026-11-24T10:00:00.Z",
                "2026-11-24T10:00:00.-1Z",
                "2026-11-24T10:00:00+5",
                "2026-11-24T10:00:00+05:0",
                "2026-11-24T10:00:00+00:",      /* separator without minutes */
                "2026-11-24T10:00:00+24:00",
                "2026-11-24T10:00:00+05:60",
                "2026-13-01T00:00:00Z",
                "2026-00-01T00:00:00Z",
                "2026-11-00T00:00:00Z",
                "2026-11-32T00:00:00Z",
                "2026-02-30T00:00:00Z",         /* not a day: must not become March 2 */
                "2026-11-31T00:00:00Z",
                "2026-11-24T24:00:00Z",
                "2026-11-24T10:60:00Z",
                "26-11-24T10:00:00Z",
                "2026/11/24T10:00:00Z",
                "2026-11-24T1:00:00Z",
                "1969-12-31T23:59:59Z",         /* before the epoch: usec_t cannot say it */
                "+2026-11-24T10:00:00Z",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                usec_t t = 12345;
                int r = parse_iso_utc(bad[i], &t);
                ASSERTF(r < 0, "\"%s\" accepted", bad[i]);
                ASSERTF(t == 12345, "\"%s\" wrote the result", bad[i]);
        }
        usec_t t;
        ASSERT_ERRNO(parse_iso_utc(NULL, &t), -EINVAL);
        ASSERT_ERRNO(parse_iso_utc("garbage", &t), -EINVAL);
}

TEST(rfc3339_local) {
        char buf[RFC3339_MAX];
        /* Winter: EST, -05:00. */
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 11, 24, 10, 0, 0, 0), buf), "2026-11-24T05:00:00-05:00");
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 1, 15, 4, 30, 15, 999999), buf), "2026-01-14T23:30:15-05:00");
        /* Summer: EDT, -04:00. */
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 7, 1, 16, 0, 0, 0), buf), "2026-07-01T12:00:00-04:00");
        /* Both sides of each transition. */
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 3, 8, 6, 59, 59, 0), buf), "2026-03-08T01:59:59-05:00");
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 3, 8, 7, 0, 0, 0), buf), "2026-03-08T03:00:00-04:00");
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 11, 1, 5, 30, 0, 0), buf), "2026-11-01T01:30:00-04:00");
        ASSERT_STREQ(format_local_rfc3339(utc(2026, 11, 1, 6, 30, 0, 0), buf), "2026-11-01T01:30:00-05:00");
        /* What we print, we read back. */
        usec_t t;
        ASSERT_OK(parse_iso_utc("2026-11-01T01:30:00-05:00", &t));
        ASSERT_EQ_TIME(t, utc(2026, 11, 1, 6, 30, 0, 0));

        ASSERT_STREQ(format_local_short(utc(2026, 11, 24, 10, 0, 0, 0), buf), "2026-11-24 05:00 -05:00");
        ASSERT_STREQ(format_local_short(utc(2026, 7, 1, 16, 0, 0, 0), buf), "2026-07-01 12:00 -04:00");
        /* The fall-back night: the same wall-clock hour twice, told apart by the offset. */
        ASSERT_STREQ(format_local_short(utc(2026, 11, 1, 5, 30, 0, 0), buf), "2026-11-01 01:30 -04:00");
        ASSERT_STREQ(format_local_short(utc(2026, 11, 1, 6, 30, 0, 0), buf), "2026-11-01 01:30 -05:00");
}

TEST(local_date) {
        ASSERT_DATE(local_date_of(utc(2026, 11, 24, 4, 59, 59, 999999)), 2026, 11, 23);
        ASSERT_DATE(local_date_of(utc(2026, 11, 24, 5, 0, 0, 0)), 2026, 11, 24);
        ASSERT_DATE(local_date_of(utc(2026, 7, 2, 3, 59, 59, 0)), 2026, 7, 1);
        ASSERT_DATE(local_date_of(utc(2026, 7, 2, 4, 0, 0, 0)), 2026, 7, 2);
        /* An evening appointment is the same Montréal day, not the next UTC day. */
        ASSERT_DATE(local_date_of(utc(2026, 11, 25, 1, 30, 0, 0)), 2026, 11, 24);

        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 12, 31 }, 1), 2027, 1, 1);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 3, 1 }, -1), 2026, 2, 28);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2028, 3, 1 }, -1), 2028, 2, 29);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 3, 7 }, 1), 2026, 3, 8);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 3, 8 }, 1), 2026, 3, 9);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 11, 1 }, 1), 2026, 11, 2);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 11, 24 }, 0), 2026, 11, 24);
        ASSERT_DATE(local_date_add_days((LocalDate) { 2026, 1, 1 }, 365), 2027, 1, 1);

        char buf[16];
        ASSERT_STREQ(format_local_date((LocalDate) { 2026, 3, 8 }, buf), "2026-03-08");
}

TEST(parse_local_date) {
        LocalDate d;
        ASSERT_OK(parse_local_date("2026-11-24", &d));
        ASSERT_DATE(d, 2026, 11, 24);
        ASSERT_OK(parse_local_date("2026-02-28", &d));
        ASSERT_DATE(d, 2026, 2, 28);
        ASSERT_OK(parse_local_date("2028-02-29", &d));
        ASSERT_DATE(d, 2028, 2, 29);
        ASSERT_OK(parse_local_date("2026-12-31", &d));
        ASSERT_DATE(d, 2026, 12, 31);

        static const char *const bad[] = {
                "2026-02-30", "2026-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32",
                "2026-1-01",  "2026-01-1",  "26-01-01",   "2026-01-01x", "2026-01-01 ", "", "2026/01/01", "garbage",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                d = (LocalDate) { 1, 2, 3 };
                ASSERTF(parse_local_date(bad[i], &d) == -EINVAL, "\"%s\" accepted", bad[i]);
                ASSERTF(d.year == 1 && d.month == 2 && d.day == 3, "\"%s\" wrote the result", bad[i]);
        }
        ASSERT_ERRNO(parse_local_date(NULL, &d), -EINVAL);
}

TEST(local_day_bounds) {
        usec_t s, e;

        /* Spring forward: 23 h, midnight EST to midnight EDT. */
        local_day_bounds((LocalDate) { 2026, 3, 8 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 3, 8, 5, 0, 0, 0));
        ASSERT_EQ_TIME(e, utc(2026, 3, 9, 4, 0, 0, 0));
        ASSERT_EQ_INT(e - s, 23 * HOUR_USEC);

        /* Fall back: 25 h. */
        local_day_bounds((LocalDate) { 2026, 11, 1 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 11, 1, 4, 0, 0, 0));
        ASSERT_EQ_TIME(e, utc(2026, 11, 2, 5, 0, 0, 0));
        ASSERT_EQ_INT(e - s, 25 * HOUR_USEC);

        /* An ordinary day, winter and summer. */
        local_day_bounds((LocalDate) { 2026, 11, 24 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 11, 24, 5, 0, 0, 0));
        ASSERT_EQ_TIME(e, utc(2026, 11, 25, 5, 0, 0, 0));
        ASSERT_EQ_INT(e - s, 24 * HOUR_USEC);
        local_day_bounds((LocalDate) { 2026, 7, 1 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 7, 1, 4, 0, 0, 0));
        ASSERT_EQ_INT(e - s, 24 * HOUR_USEC);

        /* The days around each transition are ordinary, and bounds tile the calendar. */
        LocalDate days[] = { { 2026, 3, 7 }, { 2026, 3, 9 }, { 2026, 10, 31 }, { 2026, 11, 2 } };
        for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
                usec_t s2, e2;
                local_day_bounds(days[i], &s, &e);
                ASSERT_EQ_INT(e - s, 24 * HOUR_USEC);
                local_day_bounds(local_date_add_days(days[i], 1), &s2, &e2);
                ASSERT_EQ_TIME(s2, e);
                ASSERT_DATE(local_date_of(s), days[i].year, days[i].month, days[i].day);
                ASSERT_DATE(local_date_of(e - 1), days[i].year, days[i].month, days[i].day);
        }
}

/* Day before → day after of a target: the target day lies inside whatever the server's reading. */
TEST(date_range_certain_bounds) {
        usec_t s, e, ds, de;

        /* Winter: Montréal midnight (05:00Z) starts it, UTC midnight (19:00 local) ends it. */
        date_range_certain_bounds((LocalDate) { 2026, 11, 24 }, (LocalDate) { 2026, 11, 26 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 11, 24, 5, 0, 0, 0));
        ASSERT_EQ_TIME(e, utc(2026, 11, 27, 0, 0, 0, 0));
        local_day_bounds((LocalDate) { 2026, 11, 25 }, &ds, &de);
        ASSERT(s <= ds && de <= e);

        /* Both DST Sundays as targets (their neighbours' offsets differ). */
        static const struct {
                LocalDate day;
                int start_hour_utc;
        } sundays[] = { { { 2026, 3, 8 }, 5 }, { { 2026, 11, 1 }, 4 } };
        for (size_t i = 0; i < sizeof sundays / sizeof sundays[0]; i++) {
                LocalDate before = local_date_add_days(sundays[i].day, -1), after = local_date_add_days(sundays[i].day, 1);
                LocalDate end_day = local_date_add_days(after, 1);
                date_range_certain_bounds(before, after, &s, &e);
                ASSERT_EQ_TIME(s, utc(before.year, before.month, before.day, sundays[i].start_hour_utc, 0, 0, 0));
                ASSERT_EQ_TIME(e, utc(end_day.year, end_day.month, end_day.day, 0, 0, 0, 0));
                local_day_bounds(sundays[i].day, &ds, &de);
                ASSERT(s <= ds && de <= e);
        }

        /* One day: certain only from Montréal midnight to UTC midnight (19:00 / 20:00 local). */
        date_range_certain_bounds((LocalDate) { 2026, 7, 1 }, (LocalDate) { 2026, 7, 1 }, &s, &e);
        ASSERT_EQ_TIME(s, utc(2026, 7, 1, 4, 0, 0, 0));
        ASSERT_EQ_TIME(e, utc(2026, 7, 2, 0, 0, 0, 0));
}

TEST(local_to_utc) {
        /* Spring-forward gap: 02:00 does not exist; it normalizes forward to the jump (03:00 EDT). */
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 8 }, 2, 0), utc(2026, 3, 8, 7, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 8 }, 2, 30), utc(2026, 3, 8, 7, 30, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 8 }, 1, 59), utc(2026, 3, 8, 6, 59, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 8 }, 3, 0), utc(2026, 3, 8, 7, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 8 }, 16, 0), utc(2026, 3, 8, 20, 0, 0, 0));

        /* Fall-back overlap: 01:00 happens twice; the first (EDT) occurrence is the one. */
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 1, 0), utc(2026, 11, 1, 5, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 1, 59), utc(2026, 11, 1, 5, 59, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 0, 0), utc(2026, 11, 1, 4, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 2, 0), utc(2026, 11, 1, 7, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 3, 0), utc(2026, 11, 1, 8, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 1 }, 16, 0), utc(2026, 11, 1, 21, 0, 0, 0));

        /* Ordinary days. */
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 11, 24 }, 16, 0), utc(2026, 11, 24, 21, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 7, 1 }, 16, 0), utc(2026, 7, 1, 20, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 7, 1 }, 0, 0), utc(2026, 7, 1, 4, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 12, 31 }, 23, 59), utc(2027, 1, 1, 4, 59, 0, 0));
}

static const int task_slots[] = { 1, 2, 3, 16 };

TEST(slot_day_of) {
        /* Every slot on the days around both transitions: the slot instant belongs to its own
         * day, one µs earlier to the day before, one µs later still to its day. */
        const LocalDate days[] = {
                { 2026, 3, 7 }, { 2026, 3, 8 }, { 2026, 3, 9 }, { 2026, 10, 31 }, { 2026, 11, 1 }, { 2026, 11, 2 },
                { 2026, 11, 24 }, { 2026, 7, 1 }, { 2026, 12, 31 }, { 2027, 1, 1 },
        };
        for (size_t s = 0; s < sizeof task_slots / sizeof task_slots[0]; s++) {
                int h = task_slots[s];
                for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
                        LocalDate d = days[i], prev = local_date_add_days(d, -1);
                        usec_t at = local_to_utc(d, h, 0);
                        ASSERT_DATE(slot_day_of(at, h, 0), d.year, d.month, d.day);
                        ASSERT_DATE(slot_day_of(at - 1, h, 0), prev.year, prev.month, prev.day);
                        ASSERT_DATE(slot_day_of(at + 1, h, 0), d.year, d.month, d.day);
                        /* The next slot is strictly later, and the whole span belongs to d. */
                        usec_t next = local_to_utc(local_date_add_days(d, 1), h, 0);
                        ASSERT(next > at);
                        ASSERT_DATE(slot_day_of(next - 1, h, 0), d.year, d.month, d.day);
                }
        }

        /* Spring forward, report at 02:00: the slot is 03:00 EDT (07:00Z). */
        ASSERT_DATE(slot_day_of(utc(2026, 3, 8, 6, 59, 59, 999999), 2, 0), 2026, 3, 7);
        ASSERT_DATE(slot_day_of(utc(2026, 3, 8, 7, 0, 0, 0), 2, 0), 2026, 3, 8);
        /* The day before, 02:00 EST; the day after, 02:00 EDT. */
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 7 }, 2, 0), utc(2026, 3, 7, 7, 0, 0, 0));
        ASSERT_EQ_TIME(local_to_utc((LocalDate) { 2026, 3, 9 }, 2, 0), utc(2026, 3, 9, 6, 0, 0, 0));
        /* Spring forward, backup at 03:00 shares the instant with the report. */
        ASSERT_DATE(slot_day_of(utc(2026, 3, 8, 7, 0, 0, 0), 3, 0), 2026, 3, 8);
        ASSERT_DATE(slot_day_of(utc(2026, 3, 8, 6, 59, 59, 999999), 3, 0), 2026, 3, 7);

        /* Fall back, sync at 01:00: the first 01:00 (EDT, 05:00Z) starts the day's slot and the
         * repeated 01:00 (EST, 06:00Z) is still the same slot, not a second day. */
        ASSERT_DATE(slot_day_of(utc(2026, 11, 1, 4, 59, 59, 999999), 1, 0), 2026, 10, 31);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 1, 5, 0, 0, 0), 1, 0), 2026, 11, 1);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 1, 6, 0, 0, 0), 1, 0), 2026, 11, 1);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 1, 6, 30, 0, 0), 1, 0), 2026, 11, 1);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 2, 5, 59, 59, 999999), 1, 0), 2026, 11, 1);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 2, 6, 0, 0, 0), 1, 0), 2026, 11, 2);
        /* Fall back, report at 02:00 is 02:00 EST (07:00Z), 25 h after the day before's slot. */
        ASSERT_EQ_INT(local_to_utc((LocalDate) { 2026, 11, 1 }, 2, 0) - local_to_utc((LocalDate) { 2026, 10, 31 }, 2, 0),
                      25 * HOUR_USEC);
        ASSERT_EQ_INT(local_to_utc((LocalDate) { 2026, 3, 8 }, 16, 0) - local_to_utc((LocalDate) { 2026, 3, 7 }, 16, 0),
                      23 * HOUR_USEC);
        /* rv_alerts at 16:00: an evening instant belongs to that day's slot. */
        ASSERT_DATE(slot_day_of(utc(2026, 11, 24, 21, 0, 0, 0), 16, 0), 2026, 11, 24);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 25, 4, 59, 0, 0), 16, 0), 2026, 11, 24);
        ASSERT_DATE(slot_day_of(utc(2026, 11, 25, 20, 59, 59, 999999), 16, 0), 2026, 11, 24);
}

int main(int argc, char **argv) {
        if (access("/usr/share/zoneinfo/" TZ_MONTREAL, R_OK) < 0)
                test_skip_all("no zoneinfo for %s (install tzdata)", TZ_MONTREAL);
        tz_init();

        static const TestCase cases[] = {
                TEST_CASE(iso_format),      TEST_CASE(iso_round_trip),  TEST_CASE(iso_parse_variants),
                TEST_CASE(iso_parse_rejects_garbage), TEST_CASE(rfc3339_local), TEST_CASE(local_date),
                TEST_CASE(parse_local_date), TEST_CASE(local_day_bounds), TEST_CASE(date_range_certain_bounds),
                TEST_CASE(local_to_utc),
                TEST_CASE(slot_day_of),
        };
        return TEST_MAIN(cases, argc, argv);
}
