/* SPDX-License-Identifier: MIT */
/* restore.h — `gazelle-scheduler restore FILE [--dry-run]`: a backup is recognised by its
 * content before anything is touched, migrated forward when older, and put back into the
 * configured store (SQLite or PostgreSQL) in one transaction, after the replaced store was
 * kept as pre-restore-YYYYMMDD_HHMMSS.sqlite next to the backups. */
#pragma once

#include <stdbool.h>

#include "config.h"

#define PRE_RESTORE_PREFIX "pre-restore-"

/* Checks that path is a backup this program wrote: integrity_check ok, schema_migrations with
 * exactly this program's migration names (and checksums, where recorded) from 1 up to its
 * version, and every table that version has, with exactly its columns. -EBADMSG for anything else
 * (another program's SQLite file included), -EPROTONOSUPPORT for a newer program's backup; a
 * French reason is left in reason. *ret_version (optional) gets the backup's schema version. */
int backup_inspect(const char *path, int *ret_version, char *reason, size_t reason_size);
int backup_verify(const char *path, char *reason, size_t reason_size);

/* The whole command; returns the process exit code. dry_run: print, per table, the rows now
 * and the rows after, and change nothing. */
int backup_restore(const Config *config, const char *path, bool dry_run);
