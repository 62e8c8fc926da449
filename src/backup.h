/* SPDX-License-Identifier: MIT */
/* backup.h — the Backup SQL task: consistent online copies into
 * db_backup_YYYYMMDD_HHMMSS.sqlite, verified, durable, rotated. Restore: restore.h. */
#pragma once

#include <sqlite3.h>

#include "runner.h"

#define BACKUP_PREFIX "db_backup_"
#define BACKUP_SUFFIX ".sqlite"

int backup_task_run(RunContext *ctx, TaskResult *result);

/* PRAGMA integrity_check of an open SQLite database: 0, or -errno with the reason (French). */
int backup_integrity_check(sqlite3 *db, char *reason, size_t reason_size);

/* True for exactly db_backup_YYYYMMDD_HHMMSS.sqlite: retention deletes nothing else. */
bool backup_name_valid(const char *name);

/* Keeps the newest `keep` backups in dir, deletes older ones; counts in *kept and *deleted. */
int backup_rotate(const char *dir, unsigned keep, unsigned *kept, unsigned *deleted);

/* One consistent copy of the store ctx->db into the SQLite file dest_path (the SQLite backup
 * API, or the PostgreSQL export with the embedded schema; stats gets the exported row counts),
 * integrity-checked and self-contained, not yet fsynced. On failure a reason is left. */
int backup_copy_store(RunContext *ctx, const char *dest_path, cJSON *stats, char *reason, size_t reason_size);
