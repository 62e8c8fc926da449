/* SPDX-License-Identifier: MIT */
/* backup-image.h — the copy of a SQLite database in WAL mode as a file image of one pinned
 * snapshot (database file copied by the kernel, the snapshot's WAL frames laid over it),
 * compared page by page with that snapshot read through SQLite before it is handed back. */
#pragma once

#include <sqlite3.h>
#include <stdint.h>

#include "runner.h"

typedef struct ImageStats {
        uint64_t bytes;      /* size of the copy */
        uint32_t pages;      /* pages of the snapshot */
        uint32_t wal_frames; /* committed WAL frames the snapshot needed on top of the file */
        uint32_t verified;   /* pages compared with the snapshot */
        uint32_t copy_ms;    /* file copy and WAL frames */
        uint32_t verify_ms;
        uint32_t sync_ms;    /* the final fdatasync */
} ImageStats;

/* Writes the snapshot of src's main database into dest_path (created, mode from the umask)
 * and fdatasyncs it. The copy is in rollback-journal mode, self-contained.
 * Returns 0; -EOPNOTSUPP when this way does not apply to src (not WAL, no shared-memory
 * index, the snapshot could not be pinned: the caller uses the backup API instead), with
 * dest_path removed; any other -errno is a failure explained in reason (French), with
 * dest_path removed. */
int backup_image_copy(RunContext *ctx, sqlite3 *src, const char *dest_path, ImageStats *stats, char *reason,
                      size_t reason_size);
