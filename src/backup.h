/* backup.h — the Backup SQL task: consistent online copies into
 * db_backup_YYYYMMDD_HHMMSS.sqlite, verified, durable, rotated; and restore. */
#pragma once

#include "runner.h"

#define BACKUP_PREFIX "db_backup_"
#define BACKUP_SUFFIX ".sqlite"

int backup_task_run(RunContext *ctx, TaskResult *result);

/* True for exactly db_backup_YYYYMMDD_HHMMSS.sqlite: retention deletes nothing else. */
bool backup_name_valid(const char *name);

/* Keeps the newest `keep` backups in dir, deletes older ones; counts in *kept and *deleted. */
int backup_rotate(const char *dir, unsigned keep, unsigned *kept, unsigned *deleted);

/* Checks a backup file: integrity_check ok and a schema this binary knows. On failure a
 * French reason is left in reason. */
int backup_verify(const char *path, char *reason, size_t reason_size);

/* `gazelle-scheduler restore FILE`: exit code. */
int backup_restore(const Config *config, const char *path);
