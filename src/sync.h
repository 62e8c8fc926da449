/* sync.h — the Sync Gazelle Totale task (SPEC §4.1): clients with their default contacts,
 * pianos, timeline entries and appointments from the Gazelle API into the store, technicians
 * (gazelle_users) from the entries and events. Pages are upserted whole, each in one transaction
 * (a few whole pages may share one), only the API-owned columns; deletions are inferred from
 * completed passes, under a safety threshold; high-water marks move only when their entity
 * completed. */
#pragma once

#include "runner.h"
#include "timeutil.h"

int sync_task_run(RunContext *ctx, TaskResult *result);

/* The appointments step on its own window (rv_alerts): every event whose start falls on a
 * Montréal day in [from, to] is upserted, those of the window that vanished are marked
 * CANCELED. result gets status (success, warning, error or skipped), a French message and the
 * stats under "appointments"; returns 0, or -errno when the step failed. */
int sync_appointments_window(RunContext *ctx, LocalDate from, LocalDate to, TaskResult *result);
