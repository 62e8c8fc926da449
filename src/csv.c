/* SPDX-License-Identifier: MIT */
/* csv.c — RFC 4180 records: written by the report (report.c), read back for Google Sheets
 * (google.c) so that both carry exactly the same cells. */
#include "csv.h"

#include "util.h"

static bool csv_needs_quotes(const char *s) {
        return strpbrk(s, ",\"\r\n") != NULL;
}

int csv_write_record(FILE *f, const char *const *fields, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *s = strempty(fields[i]);
                if (i > 0)
                        fputc(',', f);
                if (!csv_needs_quotes(s))
                        fputs(s, f);
                else {
                        fputc('"', f);
                        for (; *s; s++) {
                                if (*s == '"')
                                        fputc('"', f);
                                fputc(*s, f);
                        }
                        fputc('"', f);
                }
        }
        fputs("\r\n", f);
        return ferror(f) ? -EIO : 0;
}

static void buf_putc(Buf *b, char c) {
        buf_add(b, &c, 1);
}

static char *buf_take(Buf *b) {
        char *p = b->data ? b->data : xstrdup("");
        *b = (Buf) {};
        return p;
}

void csv_record_free(char **fields) {
        if (!fields)
                return;
        for (char **f = fields; *f; f++)
                free(*f);
        free(fields);
}

static void fields_push(char ***fields, size_t *n, char *s) {
        char **q = realloc(*fields, (*n + 2) * sizeof(char *));
        if (!q)
                abort();
        q[(*n)++] = s;
        q[*n] = NULL;
        *fields = q;
}

int csv_read_record(FILE *f, char ***ret, size_t *n_ret) {
        char **fields = NULL;
        size_t n = 0;
        Buf b = {};
        bool quoted = false, in_quotes = false, any = false;
        int c;

        while ((c = fgetc(f)) != EOF) {
                any = true;
                if (in_quotes) {
                        if (c != '"') {
                                buf_putc(&b, (char) c);
                                continue;
                        }
                        int d = fgetc(f);
                        if (d == '"') {
                                buf_putc(&b, '"');
                                continue;
                        }
                        in_quotes = false;
                        if (d == EOF)
                                break;
                        c = d;
                }
                if (c == '"' && !quoted && b.len == 0) {
                        quoted = in_quotes = true;
                        continue;
                }
                if (c == ',') {
                        fields_push(&fields, &n, buf_take(&b));
                        quoted = false;
                        continue;
                }
                if (c == '\r') {
                        int d = fgetc(f);
                        if (d != '\n') {
                                csv_record_free(fields), free(b.data);
                                return -EBADMSG;
                        }
                        c = '\n';
                }
                if (c == '\n') {
                        fields_push(&fields, &n, buf_take(&b));
                        *ret = fields;
                        *n_ret = n;
                        return 1;
                }
                if (quoted) { /* text after a closing quote */
                        csv_record_free(fields), free(b.data);
                        return -EBADMSG;
                }
                buf_putc(&b, (char) c);
        }
        if (in_quotes || ferror(f)) {
                csv_record_free(fields), free(b.data);
                return -EBADMSG;
        }
        if (!any) {
                free(b.data);
                *ret = NULL;
                *n_ret = 0;
                return 0;
        }
        fields_push(&fields, &n, buf_take(&b));
        *ret = fields;
        *n_ret = n;
        return 1;
}
