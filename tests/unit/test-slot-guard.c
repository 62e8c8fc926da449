/* SPDX-License-Identifier: MIT */
/* test-slot-guard.c — the slot of an instant and the per-host slot stamp of src/slot-guard.c:
 * the report's 02:00 slot on DST days (the 03:15 trigger belongs to the same slot), the stamp
 * round trip (0600, atomic), a stamp of another day, a missing or garbled stamp. */
#include <sys/stat.h>
#include <time.h>

#include "slot-guard.h"
#include "test.h"

static usec_t utc(int y, int mo, int d, int h, int mi) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
        return (usec_t) timegm(&tm) * USEC_PER_SEC;
}

static void assert_slot(const Task *t, usec_t at, int y, int m, int d, usec_t from, usec_t to) {
        Slot s = slot_of(t, at);
        ASSERTF(s.day.year == y && s.day.month == m && s.day.day == d, "slot day %04d-%02d-%02d != %04d-%02d-%02d",
                s.day.year, s.day.month, s.day.day, y, m, d);
        ASSERT(s.from == from);
        ASSERT(s.to == to);
}

TEST(report_slot_across_dst) {
        const Task *t = task_get(TASK_RAPPORT_TIMELINE);
        /* An ordinary day: 02:00 EST = 07:00 UTC; the 03:15 trigger falls in the same slot. */
        assert_slot(t, utc(2026, 12, 2, 8, 15), 2026, 12, 2, utc(2026, 12, 2, 7, 0), utc(2026, 12, 3, 7, 0));
        /* Just before 02:00: still the previous day's slot. */
        assert_slot(t, utc(2026, 12, 2, 6, 59), 2026, 12, 1, utc(2026, 12, 1, 7, 0), utc(2026, 12, 2, 7, 0));
        /* Spring forward, Sunday 2027-03-14: 02:00 does not exist, the slot starts when the clock
         * jumps to 03:00 EDT (07:00 UTC); the 03:15 EDT trigger (07:15 UTC) is that day's run. */
        assert_slot(t, utc(2027, 3, 14, 7, 15), 2027, 3, 14, utc(2027, 3, 14, 7, 0), utc(2027, 3, 15, 6, 0));
        /* Fall back, Sunday 2026-11-01: 01:00-01:59 happens twice, 02:00 once (EST, 07:00 UTC);
         * the previous slot is the 25-hour one. */
        assert_slot(t, utc(2026, 11, 1, 8, 15), 2026, 11, 1, utc(2026, 11, 1, 7, 0), utc(2026, 11, 2, 7, 0));
        assert_slot(t, utc(2026, 11, 1, 6, 30), 2026, 10, 31, utc(2026, 10, 31, 6, 0), utc(2026, 11, 1, 7, 0));
}

TEST(stamp_round_trip) {
        _cleanup_free_ char *dir = test_mkdtemp("slot-guard");
        const Task *t = task_get(TASK_BACKUP);
        Slot today = slot_of(t, utc(2026, 12, 2, 9, 0));
        Slot tomorrow = slot_of(t, utc(2026, 12, 3, 9, 0));

        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &today), 0); /* no stamp yet */
        ASSERT_OK(slot_stamp_write(dir, t, &today));
        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &today), 1);
        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &tomorrow), 0);
        ASSERT_EQ_INT(slot_stamp_matches(dir, task_get(TASK_RAPPORT_TIMELINE), &today), 0); /* per task */

        _cleanup_free_ char *path = xasprintf("%s/slots/backup.done", dir);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        struct stat st;
        ASSERT(stat(path, &st) == 0);
        ASSERT_EQ_INT(st.st_mode & 07777, 0600);
        ASSERT(access(tmp, F_OK) < 0); /* renamed into place */

        ASSERT_OK(slot_stamp_write(dir, t, &tomorrow));
        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &today), 0);
        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &tomorrow), 1);

        /* Garbage (or a truncated write) never matches. */
        FILE *f = fopen(path, "w");
        ASSERT(f);
        fputs("2026-12-0", f);
        fclose(f);
        ASSERT_EQ_INT(slot_stamp_matches(dir, t, &today), 0);
        test_rm_rf(dir);
}

TEST(stamp_unwritable_dir) {
        const Task *t = task_get(TASK_BACKUP);
        Slot s = slot_of(t, utc(2026, 12, 2, 9, 0));
        ASSERT(slot_stamp_write("/proc/nonexistent-gazelle", t, &s) < 0);
        ASSERT_EQ_INT(slot_stamp_matches("/proc/nonexistent-gazelle", t, &s), 0);
}

int main(int argc, char **argv) {
        if (access("/usr/share/zoneinfo/" TZ_MONTREAL, R_OK) < 0)
                test_skip_all("no zoneinfo for %s (install tzdata)", TZ_MONTREAL);
        tz_init();
        static const TestCase cases[] = {
                TEST_CASE(report_slot_across_dst),
                TEST_CASE(stamp_round_trip),
                TEST_CASE(stamp_unwritable_dir),
        };
        return TEST_MAIN(cases, argc, argv);
}
