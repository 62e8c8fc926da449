/* SPDX-License-Identifier: MIT */
/* labels.h — French words for Gazelle's enum values, as Piano-Tek's people read them (report
 * columns, alert emails). Unknown values are shown as they came: the API may grow. */
#pragma once

/* "UPRIGHT" → "Piano droit"; "UNKNOWN" → ""; NULL → ""; anything else as it is. */
const char *piano_type_label(const char *api_value);
