/* SPDX-License-Identifier: MIT */
/* sync.h — the Sync Gazelle Totale task: clients with their default contacts,
 * pianos, timeline entries and appointments from the Gazelle API into the store, technicians
 * (gazelle_users) from the entries and events. Pages are upserted whole, each in one transaction
 * (a few whole pages may share one), only the API-owned columns; deletions are inferred from
 * completed passes, under a safety threshold; high-water marks move only when their entity
 * completed. */
#pragma once

#include "runner.h"
#include "timeutil.h"

int sync_task_run(RunContext *ctx, TaskResult *result);

/* The appointments step on its own window (rv_alerts): every event Gazelle returns for the
 * dates [from, to] is upserted; those that vanished are marked CANCELED only where the window
 * certainly covers, whether Gazelle reads the dates as UTC or Montréal dates
 * (date_range_certain_bounds()). result gets status (success, warning, error or skipped), a
 * French message and the stats under "appointments"; returns 0, or -errno when the step failed.
 * seen_at gets the synced_at this run gave every event it received when the pass was complete
 * and its absences are meaningful (written, no record rejected): a row of that region with an
 * older synced_at is not in Gazelle any more, cancelled or held back by the threshold. Empty
 * otherwise. */
int sync_appointments_window(RunContext *ctx, LocalDate from, LocalDate to, TaskResult *result,
                             char seen_at[static ISO_UTC_MAX]);
