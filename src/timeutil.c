/* SPDX-License-Identifier: MIT */
/* timeutil.c — clocks, ISO-8601/RFC 3339 formatting and parsing, and the Montréal calendar
 * (day bounds, slots) on top of the C library's zoneinfo handling. */
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tz_init(void) {
        setenv("TZ", TZ_MONTREAL, 1);
        tzset();
}

static usec_t timespec_usec(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t now_realtime(void) {
        return timespec_usec(CLOCK_REALTIME);
}

usec_t now_monotonic(void) {
        return timespec_usec(CLOCK_MONOTONIC);
}

char *format_iso_utc(usec_t t, char buf[static ISO_UTC_MAX]) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&s, &tm);
        snprintf(buf, ISO_UTC_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned) (t % USEC_PER_SEC));
        return buf;
}

static int read_digits(const char **p, int n, int *ret) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) **p))
                        return -EINVAL;
                v = v * 10 + (**p - '0');
                (*p)++;
        }
        *ret = v;
        return 0;
}

int parse_iso_utc(const char *s, usec_t *ret) {
        int y, mo, d, h, mi, sec, oh = 0, om = 0;
        const char *p = s;

        if (!s)
                return -EINVAL;
        if (read_digits(&p, 4, &y) < 0 || *p++ != '-' || read_digits(&p, 2, &mo) < 0 || *p++ != '-' ||
            read_digits(&p, 2, &d) < 0)
                return -EINVAL;
        if (*p != 'T' && *p != ' ')
                return -EINVAL;
        p++;
        if (read_digits(&p, 2, &h) < 0 || *p++ != ':' || read_digits(&p, 2, &mi) < 0 || *p++ != ':' ||
            read_digits(&p, 2, &sec) < 0)
                return -EINVAL;

        usec_t frac = 0;
        if (*p == '.') {
                p++;
                usec_t scale = 100000;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                for (; isdigit((unsigned char) *p); p++) {
                        frac += (usec_t) (*p - '0') * scale;
                        scale /= 10;
                }
        }

        int sign = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                sign = *p == '-' ? -1 : 1;
                p++;
                if (read_digits(&p, 2, &oh) < 0)
                        return -EINVAL;
                if (*p == ':') {
                        p++;
                        if (read_digits(&p, 2, &om) < 0) /* "+hh:" promises minutes */
                                return -EINVAL;
                } else if (*p && read_digits(&p, 2, &om) < 0)
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
                return -EINVAL;

        /* Seconds are added after the check so that a leap second (:60) stays accepted. */
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        if (tm.tm_mday != d || tm.tm_mon != mo - 1)
                return -EINVAL; /* 2026-02-30: timegm() normalized it to another day */
        t += sec;
        t -= sign * (oh * 3600 + om * 60);
        if (t < 0)
                return -ERANGE;
        *ret = (usec_t) t * USEC_PER_SEC + frac;
        return 0;
}

static struct tm local_tm(usec_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&s, &tm);
        return tm;
}

char *format_local_rfc3339(usec_t t, char buf[static RFC3339_MAX]) {
        struct tm tm = local_tm(t);
        long off = tm.tm_gmtoff / 60;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
                off = -off;
        snprintf(buf, RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
        return buf;
}

char *format_local_short(usec_t t, char buf[static RFC3339_MAX]) {
        struct tm tm = local_tm(t);
        long off = tm.tm_gmtoff / 60;
        snprintf(buf, RFC3339_MAX, "%04d-%02d-%02d %02d:%02d %c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
        return buf;
}

LocalDate local_date_of(usec_t t) {
        struct tm tm = local_tm(t);
        return (LocalDate) { tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday };
}

LocalDate local_date_add_days(LocalDate d, int days) {
        /* Calendar arithmetic in UTC: dates have no time zone, and timegm() never meets a DST gap. */
        struct tm tm = { .tm_year = d.year - 1900, .tm_mon = d.month - 1, .tm_mday = d.day + days, .tm_hour = 12 };
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        return (LocalDate) { tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday };
}

char *format_local_date(LocalDate d, char buf[static 16]) {
        snprintf(buf, 16, "%04d-%02d-%02d", d.year, d.month, d.day);
        return buf;
}

int parse_local_date(const char *s, LocalDate *ret) {
        const char *p = s;
        LocalDate d;
        if (!s || read_digits(&p, 4, &d.year) < 0 || *p++ != '-' || read_digits(&p, 2, &d.month) < 0 ||
            *p++ != '-' || read_digits(&p, 2, &d.day) < 0 || *p)
                return -EINVAL;
        if (d.month < 1 || d.month > 12 || d.day < 1 || d.day > 31)
                return -EINVAL;
        LocalDate n = local_date_add_days(d, 0);
        if (n.day != d.day || n.month != d.month)
                return -EINVAL; /* 2026-02-30 */
        *ret = d;
        return 0;
}

static bool wall_clock_reads(time_t t, LocalDate d, int hour, int minute) {
        struct tm tm;
        localtime_r(&t, &tm);
        return tm.tm_year + 1900 == d.year && tm.tm_mon + 1 == d.month && tm.tm_mday == d.day &&
               tm.tm_hour == hour && tm.tm_min == minute;
}

usec_t local_to_utc(LocalDate d, int hour, int minute) {
        time_t best = (time_t) -1;

        /* Try both offsets: at the fall-back hour both are valid and the earlier one is the one a
         * timer fires at; in the spring-forward gap neither reads back and standard time wins. */
        for (int isdst = 0; isdst <= 1; isdst++) {
                struct tm tm = { .tm_year = d.year - 1900, .tm_mon = d.month - 1, .tm_mday = d.day,
                                 .tm_hour = hour, .tm_min = minute, .tm_isdst = isdst };
                time_t t = mktime(&tm);
                if (t == (time_t) -1 || !wall_clock_reads(t, d, hour, minute))
                        continue;
                if (best == (time_t) -1 || t < best)
                        best = t;
        }
        if (best == (time_t) -1) {
                struct tm tm = { .tm_year = d.year - 1900, .tm_mon = d.month - 1, .tm_mday = d.day,
                                 .tm_hour = hour, .tm_min = minute, .tm_isdst = 0 };
                best = mktime(&tm);
        }
        return (usec_t) best * USEC_PER_SEC;
}

void local_day_bounds(LocalDate d, usec_t *start, usec_t *end) {
        *start = local_to_utc(d, 0, 0);
        *end = local_to_utc(local_date_add_days(d, 1), 0, 0);
}

static usec_t utc_day_start(LocalDate d) {
        struct tm tm = { .tm_year = d.year - 1900, .tm_mon = d.month - 1, .tm_mday = d.day };
        return (usec_t) timegm(&tm) * USEC_PER_SEC;
}

void date_range_certain_bounds(LocalDate from, LocalDate to, usec_t *start, usec_t *end) {
        LocalDate after = local_date_add_days(to, 1);
        usec_t local_start = local_to_utc(from, 0, 0), local_end = local_to_utc(after, 0, 0);
        usec_t utc_start = utc_day_start(from), utc_end = utc_day_start(after);
        *start = local_start > utc_start ? local_start : utc_start;
        *end = local_end < utc_end ? local_end : utc_end;
}

LocalDate slot_day_of(usec_t t, int hour, int minute) {
        LocalDate d = local_date_of(t);
        if (t < local_to_utc(d, hour, minute))
                return local_date_add_days(d, -1);
        /* A slot in the evening gap cannot push t past the next day's slot, but guard anyway. */
        LocalDate next = local_date_add_days(d, 1);
        if (t >= local_to_utc(next, hour, minute))
                return next;
        return d;
}

int parse_timespan(const char *s, usec_t *ret) {
        static const struct {
                const char *suffix;
                usec_t mult;
        } units[] = {
                { "", USEC_PER_SEC },        { "s", USEC_PER_SEC },      { "sec", USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },  { "min", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
                { "d", 86400 * USEC_PER_SEC },
        };
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        bool overflow = errno == ERANGE;
        if (errno && !overflow)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (strcmp(end, units[i].suffix) == 0) {
                        if (overflow || v > UINT64_MAX / units[i].mult)
                                return -ERANGE;
                        *ret = (usec_t) v * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}
