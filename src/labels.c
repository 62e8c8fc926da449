/* SPDX-License-Identifier: MIT */
/* labels.c — French labels for Gazelle enum values (PianoType). */
#include "labels.h"

#include "util.h"

const char *piano_type_label(const char *t) {
        static const struct {
                const char *api, *label;
        } types[] = {
                { "GRAND", "Piano à queue" }, { "SQUARE_GRAND", "Piano carré" }, { "SPINET", "Spinet" },
                { "STUDIO", "Studio" },       { "UPRIGHT", "Piano droit" },    { "CONSOLE", "Console" },
                { "UNKNOWN", "" },
        };
        for (size_t i = 0; t && i < ELEMENTSOF(types); i++)
                if (streq(t, types[i].api))
                        return types[i].label;
        return strempty(t);
}
