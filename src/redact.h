/* SPDX-License-Identifier: MIT */
/* redact.h — the registry of the secrets a process has loaded, and the one step every error
 * text passes before it leaves the process (journal, stderr, scheduler_logs, D-Bus error
 * texts, emails): every registered secret is masked, so is the password of any URL
 * ("user:password@" → "user:***@"), and the text is made valid UTF-8.
 *
 * The registry belongs to the configuration (Config.secrets): config_load() registers every
 * secret setting (credential or environment), and the modules that obtain secrets later (OAuth
 * tokens from the store or a token endpoint, an authorization code) add theirs. Each value is
 * registered with the spellings it may be echoed in: as is, percent-encoded (a form body, a
 * query string) and JSON-escaped. It is thread-safe: the sync writer logs from its thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define REDACT_MASK "***"
/* Shorter values are not registered: masking every "ab" would ruin texts and hide nothing. */
#define SECRET_MIN_LEN 4

typedef struct Secrets Secrets;

Secrets *secrets_new(void);
/* Wipes every registered value. */
Secrets *secrets_free(Secrets *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Secrets *, secrets_free);

/* Registers value (NULL, empty or short: nothing). s may be NULL (nothing). */
void secrets_add(Secrets *s, const char *value);
/* Registers a connection string or URL: its password (postgresql://u:PASSWORD@…, password=…
 * in key=value form, raw and percent-decoded) and the whole string. */
void secrets_add_url(Secrets *s, const char *url);
size_t secrets_count(const Secrets *s);

/* An owned copy of text with every registered secret (s may be NULL) and every URL password
 * masked, as valid UTF-8. NULL text gives NULL. */
char *redact(const Secrets *s, const char *text);
/* The same, bounded: at most max bytes, cut on a character boundary. */
char *redact_cut(const Secrets *s, const char *text, size_t max);
/* Formats, then redact_cut(); the unredacted text is erased before it is freed. */
char *redact_vformat(const Secrets *s, size_t max, const char *fmt, va_list ap) _printf_(3, 0);
