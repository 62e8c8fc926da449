/* SPDX-License-Identifier: MIT */
/* terminal-text.h — UTF-8 text on a terminal: its width in cells, and a copy cut to fit. Used by
 * the CLI's tables (client.c). */
#pragma once

#include <stddef.h>

/* Cells a string takes on a terminal: one per code point, two for wide characters and emoji
 * (an emoji-presentation selector U+FE0F widens the character before it), none for combining
 * marks and joiners. Invalid UTF-8 bytes count one each. */
size_t text_width(const char *s);
/* A copy that takes at most width cells, ending in "…" when something was cut; never splits a
 * character from its selector. Control characters become spaces and invalid UTF-8 U+FFFD, so
 * one table cell always stays on one line. */
char *text_fit(const char *s, size_t width);
