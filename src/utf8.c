/* SPDX-License-Identifier: MIT */
/* utf8.c — character-boundary cuts and repair of UTF-8 text (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
#include "utf8.h"

#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <limits.h>

#include "util.h"

/* The length of the valid sequence at s (1…4), 0 when s starts an invalid sequence, or
 * -(bytes present) when s holds the valid start of a sequence that the string's end cuts. */
static int sequence_length(const unsigned char *s) {
        unsigned char c = s[0];
        int n;
        uint32_t min;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4, min = 0x10000, cp = c & 0x07;
        else
                return 0;
        for (int i = 1; i < n; i++) {
                if (s[i] == 0)
                        return -i;
                if ((s[i] & 0xc0) != 0x80)
                        return -i; /* cut here, then something else followed */
                cp = (cp << 6) | (s[i] & 0x3f);
                /* Overlongs and out-of-range starts are known after the second byte. */
                if (i == 1 && n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)))
                        return 0;
                if (i == 1 && n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)))
                        return 0;
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

size_t utf8_cut_len(const char *s, size_t max) {
        size_t n = max >= SSIZE_MAX ? strlen(s) : strnlen(s, max + 1);
        if (n <= max)
                return n;
        /* Back up over continuation bytes to the start of the character that straddles max. */
        size_t i = max;
        while (i > 0 && ((unsigned char) s[i] & 0xc0) == 0x80 && max - i < 3)
                i--;
        int l = sequence_length((const unsigned char *) s + i);
        if (l > 0 && i + (size_t) l <= max)
                return i + (size_t) l;
        return l != 0 ? i : max; /* an invalid byte is no character to keep whole */
}

char *utf8_cut(char *s, size_t max) {
        s[utf8_cut_len(s, max)] = 0;
        return s;
}

char *utf8_strndup(const char *s, size_t max) {
        size_t n = utf8_cut_len(s, max);
        char *p = xmalloc(n + 1);
        memcpy(p, s, n);
        p[n] = 0;
        return p;
}

char *utf8_make_valid(char *s) {
        unsigned char *r = (unsigned char *) s, *w = (unsigned char *) s;
        while (*r) {
                int l = sequence_length(r);
                if (l > 0) {
                        memmove(w, r, (size_t) l);
                        w += l;
                        r += l;
                } else if (l < 0)
                        r += -l; /* a cut character: its start goes, whatever follows stays */
                else {
                        *w++ = '?';
                        r++;
                }
        }
        *w = 0;
        return s;
}

bool utf8_is_valid(const char *s) {
        return !utf8_first_invalid(s);
}

const char *utf8_first_invalid(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p;) {
                int l = sequence_length(p);
                if (l <= 0)
                        return (const char *) p;
                p += l;
        }
        return NULL;
}

char *utf8_excerpt(char *buf, size_t size, const char *s, size_t max) {
        if (size == 0)
                return buf;
        if (max > size - 1)
                max = size - 1;
        size_t n = strlen(s);
        if (n <= max) {
                memcpy(buf, s, n + 1);
                return buf;
        }
        n = max >= 3 ? utf8_cut_len(s, max - 3) : 0;
        memcpy(buf, s, n);
        strcpy(buf + n, max >= 3 ? "..." : "");
        return buf;
}

char *utf8_vformat(char *buf, size_t size, const char *fmt, va_list ap) {
        if (size == 0)
                return buf;
        vsnprintf(buf, size, fmt, ap);
        return utf8_make_valid(buf);
}
