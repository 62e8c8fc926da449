/* SPDX-License-Identifier: MIT */
/* terminal-text.c — how many cells UTF-8 text takes on a terminal, and cutting it to fit. A
 * small table of zero-width and wide ranges (combining marks, East Asian wide, emoji) rather
 * than wcwidth(), whose answer depends on the locale and the C library's Unicode version. */
#include "terminal-text.h"

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define ELLIPSIS "…"
#define REPLACEMENT_CHAR "\xEF\xBF\xBD"

typedef struct Range {
        uint32_t lo, hi;
} Range;

/* Marks drawn on top of the previous character: combining marks, selectors, joiners, tags. */
static const Range zero_width[] = {
        { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x0610, 0x061A }, { 0x064B, 0x065F },
        { 0x1AB0, 0x1AFF }, { 0x1DC0, 0x1DFF }, { 0x200B, 0x200F }, { 0x2060, 0x2064 }, { 0x20D0, 0x20FF },
        { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F }, { 0xFEFF, 0xFEFF }, { 0xE0000, 0xE007F }, { 0xE0100, 0xE01EF },
};

/* Two cells: East Asian wide characters and the emoji that are drawn as emoji by default. */
static const Range wide[] = {
        { 0x1100, 0x115F },   { 0x231A, 0x231B },   { 0x2329, 0x232A },   { 0x23E9, 0x23EC },
        { 0x23F0, 0x23F0 },   { 0x23F3, 0x23F3 },   { 0x25FD, 0x25FE },   { 0x2614, 0x2615 },
        { 0x2648, 0x2653 },   { 0x267F, 0x267F },   { 0x2693, 0x2693 },   { 0x26A1, 0x26A1 },
        { 0x26AA, 0x26AB },   { 0x26BD, 0x26BE },   { 0x26C4, 0x26C5 },   { 0x26CE, 0x26CE },
        { 0x26D4, 0x26D4 },   { 0x26EA, 0x26EA },   { 0x26F2, 0x26F3 },   { 0x26F5, 0x26F5 },
        { 0x26FA, 0x26FA },   { 0x26FD, 0x26FD },   { 0x2705, 0x2705 },   { 0x270A, 0x270B },
        { 0x2728, 0x2728 },   { 0x274C, 0x274C },   { 0x274E, 0x274E },   { 0x2753, 0x2755 },
        { 0x2757, 0x2757 },   { 0x2795, 0x2797 },   { 0x27B0, 0x27B0 },   { 0x27BF, 0x27BF },
        { 0x2B1B, 0x2B1C },   { 0x2B50, 0x2B50 },   { 0x2B55, 0x2B55 },   { 0x2E80, 0x303E },
        { 0x3041, 0x33FF },   { 0x3400, 0x4DBF },   { 0x4E00, 0x9FFF },   { 0xA000, 0xA4CF },
        { 0xA960, 0xA97F },   { 0xAC00, 0xD7A3 },   { 0xF900, 0xFAFF },   { 0xFE10, 0xFE19 },
        { 0xFE30, 0xFE6F },   { 0xFF00, 0xFF60 },   { 0xFFE0, 0xFFE6 },   { 0x1F004, 0x1F004 },
        { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A }, { 0x1F200, 0x1F2FF },
        { 0x1F300, 0x1F64F }, { 0x1F680, 0x1F6FF }, { 0x1F7E0, 0x1F7EB }, { 0x1F900, 0x1F9FF },
        { 0x1FA70, 0x1FAFF }, { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
};

static bool in_ranges(const Range *r, size_t n, uint32_t cp) {
        for (size_t i = 0; i < n; i++)
                if (cp >= r[i].lo && cp <= r[i].hi)
                        return true;
        return false;
}

/* Anything that would move the cursor or break the line: C0, DEL, C1, LS, PS. */
static bool is_control(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x2028 || cp == 0x2029;
}

/* One code point: its length in bytes, or 0 for an invalid sequence (the caller takes one
 * byte). Overlong forms, surrogates and values past U+10FFFF are invalid. */
static size_t utf8_decode(const char *s, uint32_t *ret) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n;
        uint32_t cp, min;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xE0) == 0xC0)
                n = 2, cp = p[0] & 0x1F, min = 0x80;
        else if ((p[0] & 0xF0) == 0xE0)
                n = 3, cp = p[0] & 0x0F, min = 0x800;
        else if ((p[0] & 0xF8) == 0xF0)
                n = 4, cp = p[0] & 0x07, min = 0x10000;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL */
                        return 0;
                cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        *ret = cp;
        return n;
}

/* What the terminal draws as one character: a code point and the zero-width ones after it. */
typedef struct Glyph {
        const char *start;
        size_t len;     /* bytes */
        size_t width;   /* cells */
        bool invalid;   /* drawn as U+FFFD */
        bool control;   /* drawn as a space */
} Glyph;

static size_t base_width(uint32_t cp) {
        if (in_ranges(zero_width, ELEMENTSOF(zero_width), cp))
                return 0;
        return in_ranges(wide, ELEMENTSOF(wide), cp) ? 2 : 1;
}

static bool glyph_next(const char **p, Glyph *g) {
        uint32_t cp;

        if (!**p)
                return false;
        size_t n = utf8_decode(*p, &cp);
        *g = (Glyph) { .start = *p, .len = n ? n : 1, .invalid = n == 0 };
        g->control = !g->invalid && is_control(cp);
        g->width = g->invalid || g->control ? 1 : base_width(cp);

        for (bool joined = false;;) {
                const char *q = g->start + g->len;
                size_t m = *q ? utf8_decode(q, &cp) : 0;
                if (m == 0)
                        break;
                if (joined)
                        joined = false; /* the character a ZWJ glues on: part of this glyph */
                else if (cp == 0xFE0F && g->width == 1 && !g->control && !g->invalid)
                        g->width = 2;   /* emoji presentation: ⚠ + U+FE0F is drawn wide */
                else if (!in_ranges(zero_width, ELEMENTSOF(zero_width), cp))
                        break;
                joined = joined || cp == 0x200D;
                g->len += m;
        }
        *p += g->len;
        return true;
}

/* Appends the glyph as it will be drawn; returns the new end. */
static char *glyph_put(char *out, const Glyph *g) {
        if (g->invalid)
                return stpcpy(out, REPLACEMENT_CHAR);
        if (g->control) {
                *out++ = ' ';
                /* Its marks stay attached; they are valid by construction. */
                size_t n = utf8_decode(g->start, &(uint32_t) { 0 });
                memcpy(out, g->start + n, g->len - n);
                return out + g->len - n;
        }
        memcpy(out, g->start, g->len);
        return out + g->len;
}

size_t text_width(const char *s) {
        size_t w = 0;
        Glyph g;
        for (const char *p = strempty(s); glyph_next(&p, &g);)
                w += g.width;
        return w;
}

char *text_fit(const char *s, size_t width) {
        s = strempty(s);
        /* Worst case: every byte an invalid one (1 → 3 bytes), plus the ellipsis. */
        char *buf = xmalloc(strlen(s) * 3 + sizeof ELLIPSIS), *out = buf;
        bool cut = text_width(s) > width;
        size_t budget = cut ? (width > 0 ? width - 1 : 0) : width, used = 0;
        Glyph g;

        for (const char *p = s; glyph_next(&p, &g) && used + g.width <= budget; used += g.width)
                out = glyph_put(out, &g);
        if (cut && width > 0)
                out = stpcpy(out, ELLIPSIS);
        *out = 0;
        return buf;
}
