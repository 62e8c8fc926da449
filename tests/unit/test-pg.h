/* SPDX-License-Identifier: MIT */
/* test-pg.h — PostgreSQL for the unit tests: where the server is (TEST_DATABASE_URL, or
 * SBX_PG_URL when TEST_DATABASE_URL_FROM_SBX=1, i.e. inside tests/sandbox.sh) and one fresh
 * database per test, so that reruns never see each other's rows. */
#pragma once

#include <libpq-fe.h>

#include "db.h"
#include "test.h"

typedef enum TestPgAvailability {
        TEST_PG_NONE,      /* not asked for: the PostgreSQL part is skipped */
        TEST_PG_MISSING,   /* asked for (inside the sandbox) but no URL: skip with 77 */
        TEST_PG_AVAILABLE,
} TestPgAvailability;

_test_unused_ static TestPgAvailability test_pg_url(const char **ret) {
        const char *url = getenv("TEST_DATABASE_URL");
        const char *from_sbx = getenv("TEST_DATABASE_URL_FROM_SBX");
        bool sbx = from_sbx && strcmp(from_sbx, "1") == 0;
        if ((!url || !*url) && sbx)
                url = getenv("SBX_PG_URL");
        *ret = url && *url ? url : NULL;
        return *ret ? TEST_PG_AVAILABLE : sbx ? TEST_PG_MISSING : TEST_PG_NONE;
}

/* The connection string with another dbname, as key='value' pairs (libpq parses URIs and
 * key=value alike, so this works whatever form the URL takes). */
_test_unused_ static char *test_pg_conninfo_with_dbname(const char *conninfo, const char *dbname) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
        if (!opts)
                TEST_FAIL("cannot parse the PostgreSQL connection string: %s", err ? err : "out of memory");
        size_t cap = 4096, n = 0;
        char *out = calloc(1, cap);
        ASSERT(out);
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
                if (!v)
                        continue;
                n += (size_t) snprintf(out + n, cap - n, "%s%s='", n ? " " : "", o->keyword);
                for (const char *p = v; *p && n + 4 < cap; p++) {
                        if (*p == '\'' || *p == '\\')
                                out[n++] = '\\';
                        out[n++] = *p;
                }
                n += (size_t) snprintf(out + n, cap - n, "'");
                ASSERT(n + 8 < cap);
        }
        PQconninfoFree(opts);
        return out;
}

_test_unused_ static void test_pg_admin_exec(const char *admin_url, const char *sql) {
        Db *admin = NULL;
        int r = db_open_postgresql(admin_url, &admin);
        ASSERT_OKF(r, "connecting to the test server: %s", admin ? db_error(admin) : "?");
        r = db_exec(admin, sql, DB_NO_PARAMS);
        ASSERT_OKF(r, "%s: %s", sql, db_error(admin));
        db_close(admin);
}

/* A new empty UTF-8 database test_<what>_<pid>_<n>; returns its name. */
_test_unused_ static char *test_pg_create_database(const char *admin_url, const char *what) {
        static unsigned n;
        char *name = NULL, *sql = NULL;
        if (asprintf(&name, "test_%s_%d_%u", what, (int) getpid(), ++n) < 0 ||
            asprintf(&sql, "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", name) < 0)
                abort();
        test_pg_admin_exec(admin_url, sql);
        free(sql);
        return name;
}

_test_unused_ static void test_pg_drop_database(const char *admin_url, const char *name) {
        char *sql = NULL;
        if (asprintf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name) < 0)
                abort();
        test_pg_admin_exec(admin_url, sql);
        free(sql);
}
