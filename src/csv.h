/* SPDX-License-Identifier: MIT */
/* csv.h — the CSV codec (RFC 4180): the report writes its tabs with it and the Google Sheets
 * upload reads the same files back. Library layer: -errno, no logging. */
#pragma once

#include <stddef.h>
#include <stdio.h>

/* One record (fields quoted when needed, CRLF). 0 or -errno. */
int csv_write_record(FILE *f, const char *const *fields, size_t n);
/* Reads one record into a NULL-terminated array of owned fields (*ret, *n_ret); 1 when a
 * record was read, 0 at end of file, -EBADMSG on a malformed file. */
int csv_read_record(FILE *f, char ***ret, size_t *n_ret);
void csv_record_free(char **fields);
