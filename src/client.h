/* SPDX-License-Identifier: MIT */
/* client.h — the commands that talk to gazelle-schedulerd (start, logs, status), and the pure
 * text helpers their tables use (exported for tests/unit/test-client-format.c; widths and
 * fitting are terminal-text.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "terminal-text.h"
#include "timeutil.h"

/* The commands: argc/argv start at the command's name; they return the process exit code. */
int client_start(BusScope bus, int argc, char **argv);
int client_logs(BusScope bus, int argc, char **argv);
int client_status(BusScope bus, int argc, char **argv);

/* "42s", "3m 12s", "1h 02m"; "—" for a negative (unknown) duration. */
#define DURATION_MAX 32
char *format_duration(int64_t seconds, char buf[static DURATION_MAX]);
/* "42 s", "12 min", "3 h 12 min", "2 j 4 h": the size of an interval, for "il y a …". */
#define AGE_MAX 48
char *format_age(usec_t usec, char buf[static AGE_MAX]);
/* "✅ Succès", "❌ Erreur", "⏳ En cours", "⏭️ Ignoré", "⚠️ Avertissement"; the raw value otherwise. */
const char *status_label(const char *status);
/* "⏰ Auto", "👤 Manuel (user, par caller)", "🔌 API (user)", "💻 CLI (caller)": user is the
 * claimed name or email, caller the account that really started the run; newly allocated. */
char *trigger_label(const char *triggered_by, const char *user, const char *caller);
