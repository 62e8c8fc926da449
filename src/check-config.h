/* SPDX-License-Identifier: MIT */
/* check-config.h — the `check-config` command (check-config.c). */
#pragma once

#include "config.h"

#define CHECK_CONFIG_USAGE                                                                                  \
        "Usage: gazelle-scheduler check-config\n"                                                          \
        "\n"                                                                                                \
        "Validate the configuration as every command would (environment settings, credentials, the\n"      \
        "JSON file), check that the store can be reached, and print what is in effect with secrets\n"      \
        "masked. Writes nothing.\n"                                                                         \
        "Exit status: 0 valid, 1 valid but a credential a task needs is missing or the store cannot be\n"   \
        "reached, 2 invalid (one line naming the setting).\n"

/* argv[0] is "check-config". 0 valid, 1 valid with a problem (missing credential, store
 * unreachable), 2 invalid configuration or usage. */
int check_config_main(BusScope bus, int argc, char **argv);
