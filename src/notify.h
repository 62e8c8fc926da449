/* SPDX-License-Identifier: MIT */
/* notify.h — `gazelle-scheduler notify-failure UNIT`, run by gazelle-notify-failure@UNIT.service
 * (OnFailure= of the task services): mails the administrator the failed unit, how it ended, the
 * run's scheduler_logs message and the last journal lines of that invocation. */
#pragma once

#include "config.h"

#define NOTIFY_JOURNAL_LINES 30

/* The journal tail of a unit's invocation (or, without one, of the run id or the unit), oldest
 * first, one "2026-11-24 16:00 message" line each; "" when nothing matched. Owned result. */
int notify_journal_tail(const char *unit, const char *invocation_id, const char *run_id, unsigned n, char **ret);

/* A process exit code: 0 when mailed (or nobody to mail: journal only), 1 when the mail
 * failed. Never starts anything that could fail into another notification. */
int notify_failure(const Config *config, const char *unit);
