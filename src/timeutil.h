/* SPDX-License-Identifier: MIT */
/* timeutil.h — clocks and America/Montreal calendar arithmetic. Every instant is UTC
 * microseconds (usec_t); local time exists only at the edges (slots, file names, display). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

#define TZ_MONTREAL "America/Montreal"

typedef struct LocalDate {
        int year, month, day; /* 1-based month and day */
} LocalDate;

/* Pins the process to Montréal time: localtime_r()/mktime() then mean America/Montreal.
 * Called once at the top of main(), before any thread exists. */
void tz_init(void);

usec_t now_realtime(void);
usec_t now_monotonic(void);

/* "2026-11-24T10:00:00.123456Z": fixed width, sorts as text; the storage format. */
#define ISO_UTC_MAX 64
char *format_iso_utc(usec_t t, char buf[static ISO_UTC_MAX]);
/* Accepts ISO-8601/RFC 3339 with 'T' or ' ', optional fraction, 'Z' or ±hh[:mm]; -EINVAL otherwise. */
int parse_iso_utc(const char *s, usec_t *ret);
/* "2026-11-24T05:00:00-05:00": RFC 3339 in Montréal time with its offset, for people and D-Bus. */
#define RFC3339_MAX 64
char *format_local_rfc3339(usec_t t, char buf[static RFC3339_MAX]);
/* Short local form with its UTC offset, for tables and emails: "2026-11-24 05:00 -05:00". */
char *format_local_short(usec_t t, char buf[static RFC3339_MAX]);

LocalDate local_date_of(usec_t t);
LocalDate local_date_add_days(LocalDate d, int days);
/* "YYYY-MM-DD". */
char *format_local_date(LocalDate d, char buf[static 16]);
int parse_local_date(const char *s, LocalDate *ret);

/* The earliest instant whose Montréal wall clock reads d hh:mm; inside a spring-forward gap,
 * the instant the clock jumps past it (02:30 → 03:30 EDT). */
usec_t local_to_utc(LocalDate d, int hour, int minute);

/* [start, end) of a Montréal calendar day: 23, 24 or 25 hours long. */
void local_day_bounds(LocalDate d, usec_t *start, usec_t *end);

/* [start, end) that a server's filter on the dates from…to (both included) covers for certain,
 * whether it reads them as Montréal dates or as UTC dates: the intersection of both readings.
 * Gazelle documents its date filters only as "ISO dates". */
void date_range_certain_bounds(LocalDate from, LocalDate to, usec_t *start, usec_t *end);

/* The slot a time belongs to for a daily task at hh:mm: day D such that
 * slot(D) <= t < slot(D+1). */
LocalDate slot_day_of(usec_t t, int hour, int minute);

/* "4h", "90min", "30m", "45s", "1d" or plain seconds; -EINVAL when not a duration, -ERANGE
 * when it does not fit. */
int parse_timespan(const char *s, usec_t *ret);
