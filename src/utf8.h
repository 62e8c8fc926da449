/* SPDX-License-Identifier: MIT */
/* utf8.h — cutting and repairing UTF-8 text. Every text this program bounds (journal lines,
 * D-Bus error texts, stored messages, email lines) is cut here, on a character boundary: a
 * D-Bus message carrying invalid UTF-8 is refused by sd-bus, so a reply cut inside "é" is
 * never sent and its caller waits for its own timeout. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* The length (<= max) of the longest prefix of s, at most max bytes, that ends on a character
 * boundary: a multi-byte character that does not fit whole is left out whole. */
size_t utf8_cut_len(const char *s, size_t max);
/* Cuts s in place to at most max bytes, on a character boundary. Returns s. */
char *utf8_cut(char *s, size_t max);
/* An owned copy of at most max bytes of s, cut on a character boundary. */
char *utf8_strndup(const char *s, size_t max);
/* Makes s valid UTF-8 in place: an incomplete sequence (what a byte cut leaves behind) is
 * dropped, any other invalid byte becomes '?'. Returns s. */
char *utf8_make_valid(char *s);
/* vsnprintf() into a fixed buffer (an error text), then utf8_make_valid(): a byte cut (size,
 * %.Ns) leaves no half character. Returns buf. */
char *utf8_vformat(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
bool utf8_is_valid(const char *s);
/* At most max bytes of s into buf (size bytes), cut on a character boundary and, when cut,
 * ended with "..." (within max): a reader, and redact.h, know a text was cut there. Returns buf. */
char *utf8_excerpt(char *buf, size_t size, const char *s, size_t max);
/* The first byte of s that does not start a valid character, or NULL when s is valid UTF-8. */
const char *utf8_first_invalid(const char *s);
