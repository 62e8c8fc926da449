/* SPDX-License-Identifier: MIT */
/* redact.c — the secret registry and the redaction step (see redact.h). */
#include "redact.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include "utf8.h"

struct Secrets {
        pthread_mutex_t lock;
        char **values;   /* longest first, so that a secret containing another is masked whole */
        size_t n, cap;
};

Secrets *secrets_new(void) {
        Secrets *s = xmalloc(sizeof *s);
        *s = (Secrets) {};
        pthread_mutex_init(&s->lock, NULL);
        return s;
}

Secrets *secrets_free(Secrets *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                explicit_bzero(s->values[i], strlen(s->values[i]));
                free(s->values[i]);
        }
        free(s->values);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

size_t secrets_count(const Secrets *s) {
        if (!s)
                return 0;
        pthread_mutex_lock((pthread_mutex_t *) &s->lock);
        size_t n = s->n;
        pthread_mutex_unlock((pthread_mutex_t *) &s->lock);
        return n;
}

static void add_one(Secrets *s, const char *v, size_t len) {
        if (len < SECRET_MIN_LEN)
                return;
        for (size_t i = 0; i < s->n; i++)
                if (strlen(s->values[i]) == len && memcmp(s->values[i], v, len) == 0)
                        return;
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                char **p = realloc(s->values, s->cap * sizeof *p);
                if (!p)
                        abort();
                s->values = p;
        }
        size_t at = 0;
        while (at < s->n && strlen(s->values[at]) >= len)
                at++;
        memmove(s->values + at + 1, s->values + at, (s->n - at) * sizeof *s->values);
        s->values[at] = strndup(v, len);
        if (!s->values[at])
                abort();
        s->n++;
}

/* The spellings a value may be echoed in: form/query percent-encoding (either case of hex
 * digits, space as + or %20) and JSON escaping. */
static void add_spellings(Secrets *s, const char *v) {
        size_t len = strlen(v);
        add_one(s, v, len);

        static const char *const hex[] = { "0123456789ABCDEF", "0123456789abcdef" };
        for (size_t h = 0; h < ELEMENTSOF(hex); h++)
                for (int plus = 0; plus < 2; plus++) {
                        Buf b = {};
                        for (const unsigned char *p = (const unsigned char *) v; *p; p++)
                                if (isalnum(*p) || strchr("-._~", *p))
                                        buf_add(&b, (const char *) p, 1);
                                else if (*p == ' ' && plus)
                                        buf_add(&b, "+", 1);
                                else {
                                        char e[3] = { '%', hex[h][*p >> 4], hex[h][*p & 15] };
                                        buf_add(&b, e, 3);
                                }
                        if (b.data) {
                                add_one(s, b.data, b.len);
                                explicit_bzero(b.data, b.len);
                        }
                        free(b.data);
                }

        Buf j = {};
        for (const unsigned char *p = (const unsigned char *) v; *p; p++)
                if (*p == '"' || *p == '\\' || *p == '/')
                        buf_printf(&j, "\\%c", *p);
                else if (*p < 0x20)
                        buf_printf(&j, "\\u%04x", *p);
                else
                        buf_add(&j, (const char *) p, 1);
        if (j.data) {
                add_one(s, j.data, j.len);
                explicit_bzero(j.data, j.len);
        }
        free(j.data);
}

void secrets_add(Secrets *s, const char *value) {
        if (!s || isempty(value))
                return;
        pthread_mutex_lock(&s->lock);
        add_spellings(s, value);
        pthread_mutex_unlock(&s->lock);
}

static int unhex(int c) {
        return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

static char *percent_decode(const char *s, size_t n) {
        char *out = xmalloc(n + 1), *w = out;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '%' && i + 2 < n && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
                        *w++ = (char) (unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
                        i += 2;
                } else
                        *w++ = s[i];
        *w = 0;
        return out;
}

/* Where the authority of a URL starting at scheme_end ("://" excluded) ends: at the path,
 * query, fragment, or anything that cannot be in a URL (a quote, a space: where an error
 * text's quoting of it ends). */
static size_t authority_len(const char *a) {
        return strcspn(a, "/?#\"'<> \t\r\n");
}

/* In a URL authority: the password's offset and length ("u:PASSWORD@host"), 0 when none. */
static bool url_password(const char *authority, size_t len, size_t *ret_off, size_t *ret_len) {
        const char *at = NULL;
        for (size_t i = 0; i < len; i++)
                if (authority[i] == '@')
                        at = authority + i; /* the last one: a password may hold an unencoded '@' */
        if (!at)
                return false;
        const char *colon = memchr(authority, ':', (size_t) (at - authority));
        if (!colon)
                return false;
        *ret_off = (size_t) (colon + 1 - authority);
        *ret_len = (size_t) (at - colon - 1);
        return true;
}

void secrets_add_url(Secrets *s, const char *url) {
        if (!s || isempty(url))
                return;
        pthread_mutex_lock(&s->lock);
        add_spellings(s, url);
        const char *scheme = strstr(url, "://");
        size_t off, len;
        if (scheme) {
                const char *a = scheme + 3;
                if (url_password(a, authority_len(a), &off, &len) && len > 0) {
                        _cleanup_free_ char *raw = strndup(a + off, len);
                        _cleanup_free_ char *decoded = percent_decode(a + off, len);
                        if (!raw)
                                abort();
                        add_spellings(s, raw);
                        add_spellings(s, decoded);
                        explicit_bzero(raw, len);
                        explicit_bzero(decoded, strlen(decoded));
                }
        }
        /* key=value form, or a URI's ?password=…: the value, quoted or not. */
        for (const char *p = url; (p = strstr(p, "password=")); p += 9) {
                const char *v = p + 9;
                size_t n;
                if (*v == '\'') {
                        v++;
                        n = strcspn(v, "'");
                } else
                        n = strcspn(v, " &#\t");
                _cleanup_free_ char *raw = strndup(v, n);
                _cleanup_free_ char *decoded = percent_decode(v, n);
                if (!raw)
                        abort();
                add_spellings(s, raw);
                add_spellings(s, decoded);
                explicit_bzero(raw, n);
                explicit_bzero(decoded, strlen(decoded));
        }
        pthread_mutex_unlock(&s->lock);
}

/* Where a text was cut (its end, or "..."/"…" marking a cut), a secret may have been cut too:
 * its start is as secret as the whole. */
static bool at_cut(const char *p) {
        return !*p || strncmp(p, "...", 3) == 0 || strncmp(p, "…", strlen("…")) == 0;
}

static size_t secret_at(const char *p, const char *secret) {
        size_t l = 0;
        while (secret[l] && p[l] == secret[l])
                l++;
        if (!secret[l])
                return l;
        return l >= SECRET_MIN_LEN && at_cut(p + l) ? l : 0;
}

static void mask_registered(const Secrets *s, Buf *out, const char *text) {
        for (const char *p = text; *p;) {
                size_t hit = 0;
                for (size_t i = 0; i < s->n && !hit; i++)
                        hit = secret_at(p, s->values[i]);
                if (hit) {
                        buf_puts(out, REDACT_MASK);
                        p += hit;
                } else
                        buf_add(out, p++, 1);
        }
}

/* "scheme://user:password@host" → "scheme://user:***@host", wherever a URL appears. */
static void mask_url_passwords(Buf *out, const char *text) {
        const char *p = text;
        for (const char *sep; (sep = strstr(p, "://"));) {
                const char *a = sep + 3;
                size_t alen = authority_len(a), off, len;
                if (url_password(a, alen, &off, &len) && len > 0) {
                        buf_add(out, p, (size_t) (a + off - p));
                        buf_puts(out, REDACT_MASK);
                        p = a + off + len;
                } else {
                        buf_add(out, p, (size_t) (a - p));
                        p = a;
                }
        }
        buf_puts(out, p);
}

char *redact(const Secrets *s, const char *text) {
        if (!text)
                return NULL;
        Buf masked = {};
        buf_add(&masked, "", 0);
        if (s) {
                pthread_mutex_lock((pthread_mutex_t *) &s->lock);
                mask_registered(s, &masked, text);
                pthread_mutex_unlock((pthread_mutex_t *) &s->lock);
        } else
                buf_puts(&masked, text);
        Buf out = {};
        buf_add(&out, "", 0);
        mask_url_passwords(&out, masked.data);
        free(masked.data);
        return utf8_make_valid(out.data);
}

char *redact_cut(const Secrets *s, const char *text, size_t max) {
        char *r = redact(s, text);
        return r ? utf8_cut(r, max) : NULL;
}

char *redact_vformat(const Secrets *s, size_t max, const char *fmt, va_list ap) {
        char *raw = xvasprintf(fmt, ap);
        char *safe = redact_cut(s, raw, max);
        secret_free(raw);
        return safe;
}
