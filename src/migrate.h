/* SPDX-License-Identifier: MIT */
/* migrate.h — numbered schema migrations compiled in from sql/ (see embed-sql.py). */
#pragma once

#include "db.h"

typedef struct Migration {
        int version;
        const char *name;
        const char *sql;
} Migration;

#define MIGRATION_CHECKSUM_MAX 65 /* SHA-256 in hex + NUL */

extern const Migration sqlite_migrations[];
extern const Migration postgresql_migrations[];

/* Applies every migration not yet recorded in schema_migrations, in order, each exactly once
 * even when several processes start together. Returns the number applied or -errno (the
 * engine's message in db_error()). */
int migrate_apply(Db *db);
/* Adds schema_migrations.checksum where missing and fills it for every migration applied under
 * our name (what migrate_apply() does whenever it applies one): for a store that was replaced
 * by an up-to-date file made before checksums were recorded. */
int migrate_record_checksums(Db *db);
/* Highest version this binary knows for the engine. */
int migrate_latest(const Db *db);
/* SHA-256 of the migration's SQL text, in hex: recorded in schema_migrations.checksum so that a
 * backup is recognised by content (restore.c), not by a table name any program may use. */
void migration_checksum(const Migration *m, char out[static MIGRATION_CHECKSUM_MAX]);
