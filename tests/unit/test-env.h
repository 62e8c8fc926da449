/* SPDX-License-Identifier: MIT */
/* test-env.h — what the task tests (backup, restore, alerts) do to their world the same way:
 * settings given as "NAME=value" strings put into the environment before config_load(), the
 * settings of an earlier test taken out again, the configured store opened, and SQL that must
 * succeed; each failure stops the test with the database's own message. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "store.h"
#include "test.h"

_test_unused_ static void test_unsetenv_all(const char *const *names, size_t n) {
        for (size_t i = 0; i < n; i++)
                unsetenv(names[i]);
}

/* settings: NULL-terminated "NAME=value" strings (NULL: none). */
_test_unused_ static void test_setenv_settings(const char *const *settings) {
        for (const char *const *s = settings; s && *s; s++) {
                _cleanup_free_ char *name = xstrdup(*s);
                char *eq = strchr(name, '=');
                ASSERTF(eq, "%s: not NAME=value", *s);
                *eq = 0;
                setenv(name, eq + 1, 1);
        }
}

_test_unused_ static Db *store_open_ok(const Config *config) {
        Db *db = NULL;
        int r = store_open(config, &db);
        ASSERT_OKF(r, "store_open: %s", db ? db_error(db) : "?");
        return db;
}

_test_unused_ static void exec_sql(Db *db, const char *sql) {
        int r = db_exec_script(db, sql);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
}

_test_unused_ static int64_t query_int(Db *db, const char *sql) {
        int64_t v = -1;
        int r = db_query_int(db, sql, DB_NO_PARAMS, &v);
        ASSERT_OKF(r, "%s: %s", sql, db_error(db));
        return v;
}
